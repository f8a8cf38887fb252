package WaferMon::Replayer;
# ABSTRACT: the short-lived process that sends spooled batches once the destination is back.

use strict;
use warnings;

use POSIX ();
use Time::HiRes ();
use WaferMon::Config ();
use WaferMon::Spool ();
use WaferMon::Wire ();

our $VERSION = '0.1.0';

# Why a process and not a thread or a timer: Perl programs have no event loop to lend and
# ithreads are discouraged, yet spooled events must reach the sidecar after an outage without
# the application calling the SDK again. So the SDK starts (fork + exec of this perl, with a
# clean set of file descriptors) one replayer per spool folder when a batch is spooled. It holds
# replay.lock, retries with exponential backoff and full jitter, honours Retry-After, and exits
# as soon as the spool is empty, when its owner's client closes (SIGTERM), or when the owner
# process is gone (the next SDK start replays the rest). The caller never waits for it.

my ($stop, $wake) = (0, 0);
# What this replayer did, in every state it writes: the SDK's stats() and flush() read them.
my %count = (sent => 0, refused => 0, requests => 0, retries => 0);
my ($last_error, $last_refusal, $owner_pid);

sub _state {
    my ($spool, $status) = @_;
    $spool->write_json('state', { time => Time::HiRes::time(), status => $status, pid => $$, owner => $owner_pid, %count,
        last_error => $last_error, last_refusal => $last_refusal });
}

sub main {
    my $input = do { local $/; <STDIN> };
    open STDIN, '<', '/dev/null';
    my $job = WaferMon::Wire::decode_json($input);
    my $settings = bless $job->{settings}, 'WaferMon::Config';
    my $owner = $job->{owner};
    $owner_pid = $owner;
    $SIG{TERM} = $SIG{INT} = sub { $stop = 1 };
    $SIG{USR1} = sub { $wake = 1 };    # installed before the pid is published in replay.lock
    $SIG{PIPE} = 'IGNORE';
    my $spool = WaferMon::Spool->new(dir => $settings->{spool_dir}, max_bytes => $settings->{spool_max_bytes});
    my $lock = $spool->try_replay_lock or POSIX::_exit(0);    # another replayer is at work
    truncate $lock, 0;
    syswrite $lock, "$$ $owner\n";
    my $sink = sink_for($settings, $settings->{timeout});
    my $code = eval { run($settings, $spool, $sink, $owner); 0 } // do {
        warn "wafermon replayer: $@";
        $last_error = "replayer failed: $@";
        _state($spool, 'exhausted');
        1;
    };
    CORE::close($lock);
    POSIX::_exit($code);
}

sub sink_for {
    my ($settings, $timeout) = @_;
    if ($settings->{mode} eq 'direct') {
        require WaferMon::Sink::Direct;
        return WaferMon::Sink::Direct->new($settings);
    }
    require WaferMon::Sink::Sidecar;
    return WaferMon::Sink::Sidecar->new($settings, timeout => $timeout);
}

sub _owner_alive { my ($pid) = @_; kill(0, $pid) || $! == POSIX::EPERM() }

# Sleep in small slices so a SIGTERM or the owner's exit ends the wait; false when stopping.
# An idle nap also ends when the SDK signals new work (SIGUSR1).
sub _nap {
    my ($seconds, $owner, $idle) = @_;
    my $until = Time::HiRes::time() + $seconds;
    while (!$stop) {
        my $left = $until - Time::HiRes::time();
        return 1 if $left <= 0 || ($idle && $wake);
        my $slice = $idle ? 0.5 : 0.05;    # a signal (USR1, TERM) cuts a sleep short
        Time::HiRes::sleep($left < $slice ? $left : $slice);
        return 0 unless _owner_alive($owner);
    }
    return 0;
}

sub run {
    my ($settings, $spool, $sink, $owner) = @_;
    my $rand_state = 0;
    my $drained = 0;
    while (!$stop) {
        $wake = 0;
        my $claimed = $spool->claim_next;
        if (!defined $claimed) {
            # Empty: tell flush so. With background delivery, wait for more while the owner
            # lives (its appends signal); else stop (an append that races this starts another).
            _state($spool, 'drained') unless $drained++;
            return if !$settings->{_background} || !_owner_alive($owner);
            _nap($settings->{flush_interval} < 1 ? 1 : $settings->{flush_interval}, $owner, 1) or return;
            next;
        }
        $drained = 0;
        replay_file($settings, $spool, $sink, $owner, $claimed) or return;
    }
}

# Send one claimed file from its acknowledged offset, batch_size lines at a time; false when
# the replayer must stop (SIGTERM or the owner is gone).
sub replay_file {
    my ($settings, $spool, $sink, $owner, $claimed) = @_;
    open my $fh, '<:raw', $claimed or do { $spool->done($claimed); return 1 };
    my $offset = $spool->acked($claimed);
    seek $fh, $offset, 0;
    my $attempt = 0;
    while (1) {
        my (@lines, $bytes);
        while (@lines < $settings->{batch_size} && defined(my $line = <$fh>)) {
            last if substr($line, -1) ne "\n";    # a torn last line: never acknowledged
            push @lines, $line;
            $bytes += length $line;
        }
        if (!@lines) { close $fh; $spool->done($claimed); return 1 }
        while (1) {
            return 0 if $stop || !_owner_alive($owner);
            my $wait = $spool->not_before - Time::HiRes::time();
            if ($wait > 0) { _nap($wait, $owner) or return 0; next }
            my $before = $sink->{requests} // 0;
            my $res = $sink->deliver(\@lines);
            $count{requests} += ($sink->{requests} // 1) - $before;
            if ($res->{ok}) {
                $offset += $bytes;
                $spool->ack($claimed, $offset);
                $count{sent} += @lines - @{ $res->{refused} };
                $count{refused} += @{ $res->{refused} };
                _report_refused(\@lines, $res->{refused});
                _state($spool, 'sending');
                $attempt = 0;
                last;
            }
            if ($res->{done}) {    # a split batch: its first part is stored
                $count{sent} += $res->{done};
                $offset += length $_ for splice @lines, 0, $res->{done};
                $bytes = 0; $bytes += length $_ for @lines;
                $spool->ack($claimed, $offset);
            }
            my $exhausted = !$settings->{enable_retries} || $attempt >= $settings->{max_retries};
            $last_error = $res->{error};
            $count{retries}++ unless $exhausted;
            _state($spool, $exhausted ? 'exhausted' : 'retrying');
            my $delay;
            if ($exhausted) {
                $delay = $settings->{replay_interval};
                $attempt = 0;
            } else {
                my $cap = $settings->{retry_base_delay} * 2**$attempt;
                $cap = $settings->{retry_max_delay} if $cap > $settings->{retry_max_delay};
                $delay = $cap / 2 + rand($cap / 2);
                $attempt++;
            }
            if (defined $res->{retry_after}) {
                my $ra = $res->{retry_after} < $settings->{retry_max_delay} ? $res->{retry_after} : $settings->{retry_max_delay};
                $spool->set_not_before(Time::HiRes::time() + $ra);
            }
            _nap($delay, $owner) or return 0;
        }
    }
}

sub _report_refused {
    my ($lines, $refused) = @_;
    for my $r (@$refused[0 .. ($#$refused < 4 ? $#$refused : 4)]) {
        my $id = eval { WaferMon::Wire::decode_json($lines->[$r->[0]])->{event_id} } // '?';
        $last_refusal = "event $id: $r->[1]";
        warn "wafermon replayer: event $id was refused for good: $r->[1]\n";
    }
}

1;

__END__

=head1 NAME

WaferMon::Replayer - the process that sends spooled batches (internal)

=head1 DESCRIPTION

Started by L<WaferMon> with fork and exec; reads its settings from a pipe, holds
C<replay.lock>, sends with retries (exponential backoff, full jitter, C<Retry-After>),
and exits when its spool is empty and its owner is gone, on SIGTERM (C<close>), or when
the owner process has exited. SIGUSR1 wakes it when new batches arrive.

=cut
