use strict;
use warnings;
use Test::More;
use lib 't/lib';
use WaferMonTest qw(tempdir clean_env read_events wait_for);
use WaferMon;

# The destination fails for real: a plain file stands where the site folder must be created,
# so the direct sink's mkdir fails until the test removes it. No mock anywhere.
clean_env();
my $tmp = tempdir();
my $root = "$tmp/direct";
mkdir $root;

sub client {
    return WaferMon->new(mode => 'direct', direct_url => "file://$root", site_id => 'fab1',
        spool_dir => "$tmp/spool", flush_interval => '1h', max_retries => 1,
        retry_base_delay => '50ms', retry_max_delay => '200ms', replay_interval => '100ms', @_);
}
my $moved = 0;
sub block   { rename "$root/fab1", "$root/fab1.old" . ++$moved if -d "$root/fab1"; open my $fh, '>', "$root/fab1" or die; close $fh }
sub unblock { unlink "$root/fab1" or die "unblock: $!" }
sub spool_files { glob "$tmp/spool/perl/seg-*" }

subtest 'an outage: spooled privately, flush says so, then delivered without another call' => sub {
    block();
    my $wm = client();
    my $job = $wm->job(app => 'outage', business_key => 'lot-1');
    $job->tick(0.5);
    $job->finish;
    is($wm->stats->{spooled}, 3, 'three events spooled');
    like($wm->stats->{last_error}, qr/cannot create/, 'the reason is kept');
    ok(!$wm->flush(10), 'flush: not delivered while the destination fails');
    my @files = spool_files();
    ok(@files >= 1, 'a spool segment');
    is((stat "$tmp/spool/perl")[2] & 07777, 0700, 'the spool folder is 0700');
    is((stat $_)[2] & 07777, 0600, "$_ is 0600") for @files;
    unblock();
    my $n = wait_for(sub { scalar read_events($root) }, 30);
    is($n, 3, 'the replayer delivered the three events by itself');
    ok($wm->flush(10), 'flush: delivered');
    ok(!spool_files(), 'the spool is empty');
    my %ids = map { $_->{event_id} => 1 } read_events($root);
    is(scalar keys %ids, 3, 'none twice');
    ok($wm->close);
};

subtest 'what close leaves in the spool is replayed by the next start' => sub {
    block();
    my $a = client();
    my $job = $a->job(app => 'restart', business_key => 'lot-2');
    $job->finish;
    ok(!$a->close(0.5), 'close: not delivered');
    ok(scalar spool_files(), 'kept in the spool');
    my $before = () = read_events($root);
    unblock();
    sleep 1;
    is(scalar(() = read_events($root)), $before, 'nothing moves while no client runs');
    my $b = client();    # its start finds the spool and replays it; no event of its own
    my $got = wait_for(sub { grep { ($_->{entity}{business_key} // '') eq 'lot-2' } read_events($root) }, 30);
    is($got, 2, 'both events of the earlier client arrived');
    ok($b->close);
};

subtest 'new batches queue behind the spool: order kept' => sub {
    block();
    my $wm = client();
    my $job = $wm->job(app => 'order', business_key => 'lot-3');
    unblock();    # the destination is back, but the spool is not empty yet
    $job->tick($_ / 10) for 1 .. 5;
    $job->finish;
    ok($wm->flush(20), 'delivered');
    my @mine = grep { ($_->{entity}{business_key} // '') eq 'lot-3' } read_events($root);
    is_deeply([ map { $_->{kind} } @mine ], [ 'started', ('progress') x 5, 'finished' ], 'in emitted order');
    $wm->close;
};

subtest 'the spool is bounded: beyond spool_max_bytes events are dropped and counted' => sub {
    block();
    my @warnings;
    local $SIG{__WARN__} = sub { push @warnings, @_ };
    my $wm = client(spool_max_bytes => '1MiB');
    my $job = $wm->job(app => 'bound', metadata => { pad => 'x' x 16000 });
    $job->tick(0.01) for 1 .. 80;
    $job->finish;
    my $s = $wm->stats;
    ok($s->{dropped} > 0, "dropped $s->{dropped}");
    ok($s->{spooled} > 0 && $s->{spooled} + $s->{dropped} == 82, 'every event spooled or dropped');
    like("@warnings", qr/the spool .* is full/);
    my $bytes = 0; $bytes += -s $_ for spool_files();
    ok($bytes <= 2**20, "spool holds $bytes bytes");
    $wm->close(0.2);
    unblock();
    my $c = client(); ok($c->flush(30), 'drained again'); $c->close;
};

done_testing;
