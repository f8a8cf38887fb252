use strict;
use warnings;
use Test::More;
use POSIX ();
use lib 't/lib';
use WaferMonTest qw(tempdir clean_env read_events);
use WaferMon;

# A forked child never sends its parent's buffered events, never ends its parent's job, and
# sends its own; the parent still sends everything it buffered. Direct mode makes the check
# exact: every event written is in the files (the sidecar test repeats it over HTTP).
clean_env();
my $tmp = tempdir();
my $root = "$tmp/direct";

my $wm = WaferMon->new(mode => 'direct', direct_url => "file://$root", site_id => 'fab1',
    spool_dir => "$tmp/spool", flush_interval => '1h', batch_size => 100);
my $job = $wm->job(app => 'parent', business_key => 'lot-fork');
$job->tick($_ / 10) for 1 .. 3;    # buffered in the parent at fork time
is($wm->stats->{pending}, 3, 'three events wait in the parent\'s buffer');

my $pid = fork // die "fork: $!";
if ($pid == 0) {
    # The child: its own job, then a normal exit (END blocks and DESTROY run, as in real code).
    my $mine = $wm->job(app => 'child', business_key => 'lot-child');
    $mine->tick(0.5);
    $mine->finish;
    exit 0;    # $job (the parent's) goes out of scope here too: it must not be finished
}
waitpid $pid, 0;
is($? >> 8, 0, 'the child exited cleanly');
$job->finish;
ok($wm->close, 'the parent delivered');

my @events = read_events($root);
my @parent = grep { $_->{entity}{business_key} eq 'lot-fork' } @events;
my @child  = grep { $_->{entity}{business_key} eq 'lot-child' } @events;
is_deeply([ map { $_->{kind} } @parent ], [qw(started progress progress progress finished)],
    'the parent\'s events once each: no buffered tick sent twice, no finish from the child');
is(scalar(grep { $_->{source}{pid} == $pid } @parent), 0, 'the child spoke for none of the parent\'s events');
is_deeply([ map { $_->{kind} } @child ], [qw(started progress finished)], 'the child\'s own events');
is(scalar(grep { $_->{source}{pid} != $pid } @child), 0, '... with the child\'s pid');
my %ids;
$ids{ $_->{event_id} }++ for @events;
is(scalar(grep { $_ > 1 } values %ids), 0, 'no event_id twice');
done_testing;
