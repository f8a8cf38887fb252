package WaferMonTest;
# Helpers of the test suite: temporary folders, reading direct-mode files, a REAL sidecar.

use strict;
use warnings;

use Exporter 'import';
use File::Find ();
use File::Temp ();
use HTTP::Tiny ();
use IO::Socket::INET ();
use JSON::PP ();
use POSIX ();
use Test::More ();
use Time::HiRes ();

our @EXPORT_OK = qw(tempdir read_events wait_for clean_env start_sidecar stop_sidecar wafermon_bin);

sub tempdir { File::Temp::tempdir('wafermon-perl-XXXXXX', TMPDIR => 1, CLEANUP => 1) }

# Remove every WAFERMON_* variable so a test depends on nothing of the caller's.
sub clean_env { delete $ENV{$_} for grep { /\AWAFERMON_/ && $_ ne 'WAFERMON_BIN' } keys %ENV }

# Every event in every *.jsonl file under $root, decoded, with its file path in _path.
sub read_events {
    my ($root) = @_;
    my @events;
    return @events unless -d $root;
    File::Find::find({ no_chdir => 1, wanted => sub {
        return unless /\.jsonl\z/ && -f;
        open my $fh, '<:raw', $_ or die "$_: $!";
        while (my $line = <$fh>) {
            my $e = JSON::PP->new->utf8->decode($line);
            $e->{_path} = $File::Find::name;
            push @events, $e;
        }
    } }, $root);
    return @events;
}

# Poll $cond until true or $timeout seconds pass; its last value.
sub wait_for {
    my ($cond, $timeout) = @_;
    my $until = Time::HiRes::time() + ($timeout // 30);
    while (1) {
        my $v = $cond->();
        return $v if $v || Time::HiRes::time() > $until;
        Time::HiRes::sleep(0.05);
    }
}

# The wafermon command: $ENV{WAFERMON_BIN} (nox -s sdk_perl sets it) or `wafermon` on PATH.
# Missing is a failure, never a skip: these tests exist to talk to the real sidecar.
sub wafermon_bin {
    return $ENV{WAFERMON_BIN} if $ENV{WAFERMON_BIN} && -x $ENV{WAFERMON_BIN};
    for my $dir (split /:/, $ENV{PATH} // '') {
        return "$dir/wafermon" if -x "$dir/wafermon";
    }
    Test::More::BAIL_OUT('the wafermon command was not found: set WAFERMON_BIN (nox -s sdk_perl does)');
}

sub _free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0) or die "socket: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# A real `wafermon sidecar` on 127.0.0.1 whose backend is the filesystem backend under
# {workdir}/events; returns {pid, url, port, events_root, log}. Dies with its log on failure.
# $extra: more sidecar settings, as YAML flow text ("max_batch_events: 3").
sub start_sidecar {
    my ($workdir, $port, $extra) = @_;
    my $exe = wafermon_bin();
    $port ||= _free_port();
    my %sc = (port => $port, url => "http://127.0.0.1:$port", events_root => "$workdir/events",
              log => "$workdir/sidecar-$port.log");
    my $config = "$workdir/site-$port.yaml";
    open my $fh, '>', $config or die "$config: $!";
    print {$fh} "site_id: fab1\n",
        "sidecar: {listen: \"127.0.0.1:$port\", spool: {dir: \"$workdir/sidecar-spool-$port\"}"
        . ($extra ? ", $extra" : '') . "}\n",
        "backends:\n",
        "  - {name: archive, type: filesystem, config: {root: \"$workdir/events\", fsync: true}}\n";
    close $fh;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', $sc{log};
        open STDERR, '>&', \*STDOUT;
        { exec $exe, 'sidecar', '--config', $config, '--log-level', 'warning'; }
        POSIX::_exit(127);
    }
    $sc{pid} = $pid;
    my $http = HTTP::Tiny->new(timeout => 2);
    my $until = Time::HiRes::time() + 60;
    while (Time::HiRes::time() < $until) {
        return \%sc if $http->get("$sc{url}/v1/healthz")->{status} == 200;
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
            die "the sidecar exited during start-up; its log:\n" . _slurp($sc{log});
        }
        Time::HiRes::sleep(0.1);
    }
    stop_sidecar(\%sc);
    die "the sidecar did not become healthy in 60 s; its log:\n" . _slurp($sc{log});
}

sub stop_sidecar {
    my ($sc) = @_;
    return unless $sc->{pid};
    kill 'TERM', $sc->{pid};
    my $until = Time::HiRes::time() + 30;
    while (Time::HiRes::time() < $until) {
        if (waitpid($sc->{pid}, POSIX::WNOHANG()) == $sc->{pid}) { $sc->{pid} = 0; return }
        Time::HiRes::sleep(0.05);
    }
    kill 'KILL', $sc->{pid};
    waitpid $sc->{pid}, 0;
    $sc->{pid} = 0;
}

sub _slurp { open my $fh, '<', $_[0] or return "(no log)"; local $/; my $t = <$fh>; substr($t, -4000) }

1;
