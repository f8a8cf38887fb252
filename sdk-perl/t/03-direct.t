use strict;
use warnings;
use Test::More;
use lib 't/lib';
use WaferMonTest qw(tempdir clean_env read_events);
use WaferMon qw(monitored);

clean_env();
my $tmp = tempdir();
my $root = "$tmp/direct";

sub client {
    return WaferMon->new(mode => 'direct', direct_url => "file://$root", site_id => 'fab1',
        spool_dir => "$tmp/spool", flush_interval => '1h', @_);
}

my $UUID4 = qr/\A[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\z/;

subtest 'a job with a subjob and ticks lands in ROOT/{site}/{UTC date}/events.jsonl' => sub {
    my $wm = client(metadata => { line => 'L7' });
    my $job = $wm->job(app => { name => 'etch', version => '2.1' }, business_key => 'lot-1', metadata => { recipe => 'r7' });
    my $sub = $job->subjob(sub_key => 'wafer-1');
    $sub->tick(0.5, { chamber => 'B' });
    $sub->finish;
    my $x = 0; $x += $_ for 1 .. 200_000;    # some CPU for cpu_user_s
    $job->finish;
    ok($wm->flush, 'flush: delivered');
    my @events = read_events($root);
    is(scalar @events, 5, 'five events');
    my ($started) = grep { $_->{kind} eq 'started' && $_->{entity}{type} eq 'job' } @events;
    like($started->{event_id}, $UUID4);
    like($started->{time}, qr/\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\z/);
    my $date = substr $started->{time}, 0, 10;
    like($started->{_path}, qr{/direct/fab1/\Q$date\E/events\.jsonl\z}, 'the filesystem backend layout');
    is_deeply($started->{app}, { name => 'etch', version => '2.1' });
    is_deeply($started->{entity}, { type => 'job', id => $job->entity_id, business_key => 'lot-1' });
    is_deeply($started->{metadata}, { line => 'L7', recipe => 'r7' }, 'client metadata, then the job\'s');
    is_deeply($started->{source}, { host => $started->{source}{host}, pid => $$, sdk => 'perl', sdk_version => $WaferMon::VERSION });
    ok(!exists $started->{metrics}, 'started has no metrics');
    my ($progress) = grep { $_->{kind} eq 'progress' } @events;
    is($progress->{metrics}{progress}, 0.5);
    ok($progress->{metrics}{duration_s} >= 0);
    is_deeply($progress->{entity}, { type => 'subjob', id => $sub->entity_id, parent_id => $job->entity_id, business_key => 'lot-1', sub_key => 'wafer-1' }, 'the subjob carries the lot\'s key');
    is($progress->{metadata}{chamber}, 'B', 'tick metadata merged');
    my ($sub_end) = grep { $_->{kind} eq 'finished' && $_->{entity}{type} eq 'subjob' } @events;
    is($sub_end->{metadata}{chamber}, 'B', '... and carried by later events');
    my ($end) = grep { $_->{kind} eq 'finished' && $_->{entity}{type} eq 'job' } @events;
    for my $m (qw(duration_s cpu_user_s cpu_system_s mem_max_mb)) {
        ok(defined $end->{metrics}{$m} && $end->{metrics}{$m} >= 0, "finished has $m");
    }
    ok($end->{metrics}{mem_max_mb} > 0, 'mem_max_mb from VmHWM');
    my %ids = map { $_->{event_id} => 1 } @events;
    is(scalar keys %ids, 5, 'every event_id once');
    ok($wm->close);
};

subtest 'monitored { } : finished with the block\'s value, failed with the die (rethrown)' => sub {
    unlink glob "$root/fab1/*/events.jsonl";
    my $wm = client();
    my $value = monitored { my ($job) = @_; $job->tick(progress => 1); 42 } client => $wm, app => 'sort', business_key => 'lot-2';
    is($value, 42, 'the block\'s value');
    my $ok = eval { monitored { die "chamber door open\n" } client => $wm, app => 'sort', business_key => 'lot-3'; 1 };
    ok(!$ok, 'the die goes on');
    is($@, "chamber door open\n", 'unchanged');
    eval { monitored { die bless({ msg => 'x' }, 'Fab::LotAborted') } client => $wm, app => 'sort'; 1 };
    $wm->close;
    my @events = read_events($root);
    my @failed = grep { $_->{kind} eq 'failed' } @events;
    is(scalar @failed, 2);
    is_deeply([ sort map { $_->{error}{type} } @failed ], ['Fab::LotAborted', 'die']);
    my ($door) = grep { $_->{error}{type} eq 'die' } @failed;
    is($door->{error}{message}, 'chamber door open');
    is($door->{entity}{business_key}, 'lot-3');
    is(scalar(grep { $_->{kind} eq 'finished' } @events), 1);
};

subtest 'a guard going out of scope: finished, or failed while a die unwinds' => sub {
    unlink glob "$root/fab1/*/events.jsonl";
    my $wm = client();
    eval { die "earlier, caught\n" };    # a stale $@ is no failure of the next job
    { my $job = $wm->job(app => 'guard', business_key => 'ok') }
    eval { my $job = $wm->job(app => 'guard', business_key => 'dies'); die "wafer broke\n" };
    is($@, "wafer broke\n");
    $wm->close;
    my %end = map { $_->{entity}{business_key} => $_ } grep { $_->{kind} =~ /finished|failed/ } read_events($root);
    is($end{ok}{kind}, 'finished');
    is($end{dies}{kind}, 'failed');
    is($end{dies}{error}{message}, 'wafer broke');
};

subtest 'emit_event / emit_batch: wire form, other days and sites; a bad one is refused here' => sub {
    my $wm = client();
    my %e = (schema_version => 1, kind => 'started', app => { name => 'ext' }, entity => { type => 'job', id => 'ext-1' });
    my @warnings;
    local $SIG{__WARN__} = sub { push @warnings, @_ };
    is($wm->emit_batch([
        { %e, event_id => '9e0f1a2b-3c4d-4e5f-8a71-829304152637', time => '2026-11-27T23:00:00-02:00', site_id => 'fab1' },
        { %e, event_id => '0f1a2b3c-4d5e-4f60-9b82-930415263748', time => '2026-11-28T12:00:00Z', site_id => 'fab2' },
        { %e, event_id => '1f1a2b3c-4d5e-4f60-9b82-930415263748', time => '2026-11-28T12:00:00Z', site_id => 'fab2', kind => 'strated' },
    ]), 2, 'two queued, the misspelt kind refused');
    like("@warnings", qr/rejected and not sent: kind: must be one of/);
    is($wm->stats->{rejected}, 1);
    ok($wm->close);
    ok(-f "$root/fab1/2026-11-28/events.jsonl", 'the UTC date of a time with an offset');
    ok(-f "$root/fab2/2026-11-28/events.jsonl", 'another site');
};

subtest 'batching: nothing is written before the batch is full, a top-level job ends or flush' => sub {
    my $wm = client(batch_size => 3);
    my $job = $wm->job(app => 'batch');     # a top-level start is sent at once
    my $count = sub { scalar grep { $_->{entity}{id} eq $job->entity_id } read_events($root) };
    is($count->(), 1, 'started sent at once');
    $job->tick(0.1); $job->tick(0.2);
    is($count->(), 1, 'two ticks wait in the buffer');
    $job->tick(0.3);
    is($count->(), 4, 'the third fills the batch');
    $job->tick(0.4);
    is($wm->stats->{pending}, 1);
    $job->finish;
    is($count->(), 6, 'the job\'s end sends the rest');
    $wm->close;
};

subtest 'a sparse event goes out at once, a burst is batched (flush_interval)' => sub {
    my $wm = client(flush_interval => '1s');
    my $job = $wm->job(app => 'sparse');
    my $count = sub { scalar grep { $_->{entity}{id} eq $job->entity_id } read_events($root) };
    $job->tick(0.1) for 1 .. 3;
    is($count->(), 1, 'a burst right after the start waits');
    select undef, undef, undef, 1.1;
    $job->tick(0.2);
    is($count->(), 5, 'the first call after a quiet spell hands everything on');
    $job->finish;
    $wm->close;
};

subtest 'errors of the caller are croaked, naming the field' => sub {
    my $wm = client();
    like(eval { $wm->job(app => 'x', entity_type => 'task') } // $@, qr/entity_type: must be/);
    like(eval { $wm->job(app => 'x', entity_type => 'subjob') } // $@, qr/parent: a subjob needs/);
    my $nosite = WaferMon->new(mode => 'direct', direct_url => "file://$root", spool_dir => "$tmp/spool");
    like(eval { $nosite->job(app => 'x') } // $@, qr/site_id: not given/);
    my $job = $wm->job(app => 'x');
    like(eval { $job->tick('half') } // $@, qr/progress: expected a number/);
    $job->finish;
    like(eval { $job->tick(0.5) } // $@, qr/the job has ended \(finished\)/);
    ok(!$job->finish, 'a second finish does nothing');
    $wm->close; $nosite->close;
};

done_testing;
