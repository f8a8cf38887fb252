use strict;
use warnings;
use Test::More;
use POSIX ();
use lib 't/lib';
use WaferMonTest qw(tempdir clean_env read_events wait_for start_sidecar stop_sidecar);
use WaferMon qw(monitored);

# End to end against the REAL `wafermon sidecar` (nox -s sdk_perl passes its path in
# WAFERMON_BIN; without it this test fails, it never skips). The sidecar validates every
# event with the core codec and stores it with the filesystem backend; the test reads the
# backend's files, so only what the sidecar accepted counts.
clean_env();
my $tmp = tempdir();
my $sc = start_sidecar($tmp);
my $main_pid = $$;
END { stop_sidecar($sc) if $sc && $$ == $main_pid }    # not from a forked child

sub client {
    return WaferMon->new(sidecar_url => $sc->{url}, site_id => 'fab1', spool_dir => "$tmp/spool",
        max_retries => 1, retry_base_delay => '50ms', retry_max_delay => '200ms',
        replay_interval => '200ms', @_);
}
sub stored { my ($key) = @_; grep { ($_->{entity}{business_key} // '') eq $key } read_events($sc->{events_root}) }

subtest 'jobs, subjobs, ticks and wire-form events reach the sidecar and its backend' => sub {
    my $wm = client(batch_size => 4);
    monitored {
        my ($job) = @_;
        for my $w (1 .. 3) {
            my $sub = $job->subjob(sub_key => "wafer-$w");    # the job's business key
            $sub->tick($_ / 4, { step => $_ }) for 1 .. 4;
            $sub->finish;
        }
    } client => $wm, app => { name => 'litho', version => '3.0' }, business_key => 'lot-e2e';
    ok($wm->emit_event({ schema_version => 1, event_id => '9e0f1a2b-3c4d-4e5f-8a71-829304152637', kind => 'started',
        time => '2026-11-28T12:00:00Z', site_id => 'fab1', app => { name => 'ext' },
        entity => { type => 'job', id => 'ext-1', business_key => 'lot-e2e' } }), 'emit_event');
    ok($wm->flush(10), 'flush: delivered');
    my $n = wait_for(sub { my @e = stored('lot-e2e'); @e >= 21 ? scalar @e : 0 }, 30);
    is($n, 21, '2 + 3 x 6 + 1 events stored');
    my %ids; $ids{ $_->{event_id} }++ for stored('lot-e2e');
    is(scalar keys %ids, 21, 'none twice');
    is($wm->stats->{sent}, 21);
    ok($wm->stats->{requests} >= 6, 'batches of at most 4: ' . $wm->stats->{requests} . ' requests');
    ok($wm->close);
};

subtest 'a refused event is counted, the rest of its batch stored' => sub {
    my $wm = client();
    my @warnings;
    local $SIG{__WARN__} = sub { push @warnings, @_ };
    # Valid for this SDK's own check, refused by the sidecar's schema (a site_id of 65 characters).
    my %e = (schema_version => 1, kind => 'started', time => '2026-11-28T12:00:00Z', app => { name => 'ext' });
    is($wm->emit_batch(
        { %e, event_id => '1f1a2b3c-4d5e-4f60-9b82-930415263748', site_id => 'x' x 65, entity => { type => 'job', id => 'bad' } },
        { %e, event_id => '2f1a2b3c-4d5e-4f60-9b82-930415263748', site_id => 'fab1', entity => { type => 'job', id => 'good', business_key => 'lot-refused' } },
    ), 2);
    ok($wm->flush(10));
    is($wm->stats->{refused}, 1, 'one refused by the sidecar');
    like("@warnings", qr/refused 1 event.*1f1a2b3c/, "the refusal is reported to the application");
    ok(wait_for(sub { scalar stored('lot-refused') }, 30), 'the valid one stored');
    $wm->close;
};

subtest 'sidecar down: spooled, not lost, not twice; delivered once it is back' => sub {
    my $port = $sc->{port};
    stop_sidecar($sc);
    my $wm = client();
    my $job = $wm->job(app => 'outage', business_key => 'lot-down');
    $job->tick(0.5);
    $job->finish;
    ok(!$wm->flush(5), 'flush: not delivered while the sidecar is down');
    like($wm->stats->{last_error}, qr/unreachable/);
    is($wm->stats->{spooled}, 3);
    # Another process spools while the sidecar is down and is killed (kill -9, no close, no
    # END): what it had handed to the spool still arrives.
    my $pid = fork // die;
    if (!$pid) {
        my $c = client();
        $c->job(app => 'outage', business_key => 'lot-down-child')->finish;
        kill 'KILL', $$;
    }
    waitpid $pid, 0;
    $sc = start_sidecar($tmp, $port);
    my $n = wait_for(sub { my $n = () = (stored('lot-down'), stored('lot-down-child')); $n >= 5 ? $n : 0 }, 30);
    is($n, 5, 'the three events and the other process\'s two arrived without another call');
    ok($wm->flush(10), 'flush: delivered');
    my %ids; $ids{ $_->{event_id} }++ for stored('lot-down'), stored('lot-down-child');
    is(scalar(grep { $_ > 1 } values %ids), 0, 'none twice');
    ok($wm->close);
};

subtest 'a batch above the sidecar\'s max_batch_events (422) is split until it fits' => sub {
    my $small = start_sidecar(tempdir(), undef, 'max_batch_events: 3');
    my $wm = client(sidecar_url => $small->{url}, batch_size => 10, flush_interval => '1h');
    my $job = $wm->job(app => 'split', business_key => 'lot-split');
    $job->tick($_ / 10) for 1 .. 9;    # with the start: 10 events in one batch
    $job->finish;
    ok($wm->flush(20), 'delivered');
    my $n = wait_for(sub { my @e = grep { ($_->{entity}{business_key} // '') eq 'lot-split' } read_events($small->{events_root}); @e >= 11 ? scalar @e : 0 }, 30);
    is($n, 11, 'all eleven stored, none twice');
    ok($wm->stats->{requests} > 2, 'in more requests than batches: ' . $wm->stats->{requests});
    is($wm->stats->{refused}, 0, 'nothing refused');
    $wm->close;
    stop_sidecar($small);
};

subtest 'fork: the child never sends the parent\'s buffered events' => sub {
    my $wm = client(flush_interval => '1h', batch_size => 100);
    my $job = $wm->job(app => 'fork', business_key => 'lot-fork');
    $job->tick(0.1) for 1 .. 3;
    my $pid = fork // die;
    if (!$pid) {
        $wm->job(app => 'fork', business_key => 'lot-fork-child')->finish;
        exit 0;
    }
    waitpid $pid, 0;
    $job->finish;
    ok($wm->close);
    wait_for(sub { my $n = () = (stored('lot-fork'), stored('lot-fork-child')); $n >= 7 }, 30);
    is_deeply([ map { $_->{kind} } sort { $a->{time} cmp $b->{time} } stored('lot-fork') ],
        [qw(started progress progress progress finished)], 'the parent\'s events, each once');
    is(scalar(() = stored('lot-fork-child')), 2, 'the child\'s own two');
};

done_testing;
