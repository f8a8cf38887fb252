package WaferMon;
# ABSTRACT: send job events to wafermon from Perl: sidecar or direct mode, no event loop.

use strict;
use warnings;

use Carp ();
use Config ();
use Exporter 'import';
use File::Basename ();
use File::Path ();
use File::Spec ();
use POSIX ();
use Scalar::Util ();
use Time::HiRes ();
use WaferMon::Config ();
use WaferMon::Job ();
use WaferMon::Spool ();
use WaferMon::Wire ();

our $VERSION = '0.1.0';
$WaferMon::Wire::VERSION = $VERSION;
our @EXPORT_OK = qw(monitored);

my %LIVE;    # every open client (weak), closed at exit: refaddr => client

# ---- construction ------------------------------------------------------------------------------

sub new {
    my ($class, %args) = @_;
    my $metadata = delete $args{metadata};
    my $app = delete $args{app};
    Carp::croak('metadata: expected a hash ref') if defined $metadata && ref $metadata ne 'HASH';
    my $settings = WaferMon::Config->load(%args);
    my $self = bless {
        settings => $settings,
        metadata => $metadata || {},
        app      => $app,
        pid      => $$,
        buf      => [],
        buf_since => undef,
        last_handoff => 0,
        max_buf  => ($settings->{batch_size} < $settings->{queue_size} ? $settings->{batch_size} : $settings->{queue_size}),
        spool    => WaferMon::Spool->new(dir => $settings->{spool_dir}, max_bytes => $settings->{spool_max_bytes}),
        stats    => { queued => 0, sent => 0, spooled => 0, dropped => 0, rejected => 0, refused => 0,
                      metadata_truncated => 0, requests => 0, last_error => undef },
        closed   => 0,
    }, $class;
    $self->{sink} = $self->_sink;
    $self->{background} = ($settings->{delivery} // ($settings->{mode} eq 'direct' ? 'inline' : 'background')) eq 'background';
    if ($settings->{mode} eq 'direct') {
        my $root = $settings->direct_root;
        File::Path::make_path($root, { error => \my $err }) if !-d $root;
        -d $root && -w _ or die WaferMon::ConfigError->new(["WAFERMON_DIRECT_URL: cannot write to $root"]);
    }
    $self->{spool_pending} = $self->{spool}->pending;
    $self->_ensure_replayer if $self->{spool_pending};    # an earlier process left events: send them
    $LIVE{ Scalar::Util::refaddr($self) } = $self;
    Scalar::Util::weaken($LIVE{ Scalar::Util::refaddr($self) });
    return $self;
}

sub _sink {
    my ($self) = @_;
    my $s = $self->{settings};
    if ($s->{mode} eq 'direct') {
        require WaferMon::Sink::Direct;
        return WaferMon::Sink::Direct->new($s);
    }
    require WaferMon::Sink::Sidecar;
    my $t = $s->{inline_timeout} < $s->{timeout} ? $s->{inline_timeout} : $s->{timeout};
    return WaferMon::Sink::Sidecar->new($s, timeout => $t);
}

sub settings { $_[0]{settings} }
sub site_id  { $_[0]{settings}{site_id} }

# ---- fork safety -------------------------------------------------------------------------------

# In a forked child, the buffer still holds the parent's events: the parent sends them, so the
# child forgets them (and the parent's replayer and connection) before doing anything else.
sub _forked {
    my ($self) = @_;
    $self->{pid} = $$;
    $self->{buf} = [];
    $self->{buf_since} = undef;
    $self->{stats}{$_} = 0 for qw(queued sent spooled dropped rejected refused requests);
    $self->{replayer_pids} = [];    # the parent's, not ours to stop
    $self->{sink} = $self->_sink;
}

# ---- the shared interface ----------------------------------------------------------------------

# emit_event(\%event | $json_text): queue one event in wire form; 1, or 0 if it was refused
# here (warned and counted: an invalid field, or the client is closed).
sub emit_event {
    my ($self, $event) = @_;
    $self->_forked if $self->{pid} != $$;
    if ($self->{closed}) { return $self->_drop('the client is closed') }
    my $line = eval { WaferMon::Wire::event_line($event) };
    if (!defined $line) {
        my $why = $@ =~ s/\s+\z//r;
        $self->{stats}{rejected}++;
        $self->{stats}{last_error} = "rejected: $why";
        Carp::carp("wafermon: an event was rejected and not sent: $why");
        return 0;
    }
    $self->_add($line, 0);
    return 1;
}

# emit_batch(\@events) or emit_batch(@events): how many were queued.
sub emit_batch {
    my $self = shift;
    my @events = @_ == 1 && ref $_[0] eq 'ARRAY' ? @{ $_[0] } : @_;
    my $n = 0;
    $self->emit_event($_) && $n++ for @events;
    return $n;
}

# job(%options): a WaferMon::Job, started now. app (name or {name, version, app_id}),
# version, business_key, sub_key, metadata, entity_id, site_id.
sub job {
    my ($self, %opt) = @_;
    $self->_forked if $self->{pid} != $$;
    Carp::croak('the client is closed') if $self->{closed};
    if (($opt{entity_type} // 'job') eq 'subjob' && ref $opt{parent}) {
        return $opt{parent}->subjob(%opt);
    }
    return WaferMon::Job->_new($self, %opt);
}

# monitored { my ($job) = @_; ... } app => 'etch', business_key => 'lot-1', client => $wm;
# Runs the block as a job: finished when it returns (its value is returned), failed when it
# dies (the error is rethrown). Without client, the default client (WAFERMON_* variables).
sub monitored(&@) {
    my ($code, %opt) = @_;
    my $client = delete $opt{client} // WaferMon->default;
    my $parent = delete $opt{parent};
    my $job = $parent ? $parent->subjob(%opt) : $client->job(%opt);
    my $want = wantarray;
    my @result;
    local $WaferMon::Job::ENCLOSING = $job;    # its subjobs take its business key
    my $ok = eval {
        if ($want) { @result = $code->($job) }
        elsif (defined $want) { $result[0] = $code->($job) }
        else { $code->($job) }
        1;
    };
    if (!$ok) {
        my $err = $@;
        $job->fail($err);
        die $err;
    }
    $job->finish;
    return $want ? @result : $result[0];
}

# flush($timeout): send what is buffered and wait, at most $timeout seconds (default
# flush_timeout), until nothing waits in the spool. True when all of it was delivered.
sub flush {
    my ($self, $timeout) = @_;
    $self->_forked if $self->{pid} != $$;
    $timeout //= $self->{settings}{flush_timeout};
    $self->_send_buffer;
    return $self->_wait_for_spool($timeout, 0);
}

# close($timeout): flush, then stop this client's replayer; what is still undelivered stays
# in the spool for the next SDK start. Returns what flush returned. Called at exit too.
sub close {
    my ($self, $timeout) = @_;
    return 1 if $self->{closed};
    $self->_forked if $self->{pid} != $$;
    $timeout //= $self->{settings}{flush_timeout};
    $self->_send_buffer;
    my $delivered = $self->_wait_for_spool($timeout, 1);
    $self->_stop_replayer;
    $self->{closed} = 1;
    $self->{sink}->release;
    delete $LIVE{ Scalar::Util::refaddr($self) };
    return $delivered;
}

sub stats {
    my ($self) = @_;
    $self->_forked if $self->{pid} != $$;
    my %stats = (%{ $self->{stats} }, mode => $self->{settings}{mode}, pending => scalar @{ $self->{buf} },
        delivery => $self->{background} ? 'background' : 'inline',
        spool_pending => ($self->{spool}->pending ? 1 : 0));
    my $state = $self->{spool}->read_json('state');
    if ($self->{background} && $state && ($state->{owner} // 0) == $$) {
        # Sent by this client's replayer (it serves the whole spool folder).
        $stats{$_} = $state->{$_} // 0 for qw(sent refused requests retries);
        $stats{last_error} = $state->{last_refusal} // $state->{last_error} // $stats{last_error};
    }
    $stats{replayer} = $state if $state;
    return \%stats;
}

# The process's default client, made from WAFERMON_* (and WAFERMON_SDK_CONFIG) on first use.
my $DEFAULT;
sub default {
    my ($class) = @_;
    $DEFAULT = undef if $DEFAULT && ($DEFAULT->{closed});
    return $DEFAULT //= WaferMon->new;
}

# ---- buffering and sending ---------------------------------------------------------------------

sub _drop {
    my ($self, $why) = @_;
    $self->{stats}{dropped}++;
    $self->{stats}{last_error} = "dropped: $why";
    Carp::carp("wafermon: dropped an event: $why") if $self->{stats}{dropped} < 10 || $self->{stats}{dropped} % 1000 == 0;
    return 0;
}

sub _lifecycle {
    my ($self, $job, $kind, $time, $metrics, $error, $send_now) = @_;
    $self->_forked if $self->{pid} != $$;
    return $self->_drop('the client is closed') if $self->{closed};
    $self->_add(WaferMon::Wire::lifecycle_line($job->head, $kind, $time, $metrics, $job->{meta_json}, $error), $send_now);
    return 1;
}

# The buffer goes out when it holds batch_size events, when the last hand-off is at least
# flush_interval ago (checked here: there is no timer), and at a top-level job's start and
# end. So a sparse event (a tick after a quiet spell) goes out at once, and a burst is
# batched; what a burst leaves in the buffer goes with the next call, flush or close.
sub _add {
    my ($self, $line, $send_now) = @_;
    my $buf = $self->{buf};
    push @$buf, $line;
    $self->{stats}{queued}++;
    my $now = Time::HiRes::time();
    $self->{buf_since} //= $now;
    if ($send_now || @$buf >= $self->{max_buf} || $now - $self->{last_handoff} >= $self->{settings}{flush_interval}) {
        $self->_send_buffer;
    }
}

sub _send_buffer {
    my ($self) = @_;
    my $lines = $self->{buf};
    return unless @$lines;
    _print_events($lines) if $self->{settings}{console};
    $self->{buf} = [];
    $self->{buf_since} = undef;
    $self->{last_handoff} = Time::HiRes::time();
    # Background delivery: the batch goes to the local spool (one append) and the replayer
    # process sends it; the caller never waits for the network.
    return $self->_to_spool($lines, undef) if $self->{background};
    # While anything waits in the spool, new batches queue up behind it (order per destination).
    if ($self->{spool_pending} && ($self->{spool_pending} = $self->{spool}->pending)) {
        return $self->_to_spool($lines, undef);
    }
    # One attempt, bounded by inline_timeout; retries are the replayer's, never the caller's.
    my $before = $self->{sink}{requests} // 0;
    my $res = eval { $self->{sink}->deliver($lines) } // { ok => 0, error => "send failed: $@" };
    $self->{stats}{requests} += ($self->{sink}{requests} // 1) - $before;
    if ($res->{ok}) {
        $self->_count_sent($lines, $res->{refused});
        return;
    }
    if ($res->{done}) {
        my @stored = splice @$lines, 0, $res->{done};
        $self->_count_sent(\@stored, []);
    }
    $self->{stats}{last_error} = $res->{error};
    $self->_to_spool($lines, $res->{retry_after});
}

# Console mode: each event's wire JSON on stderr as it is handed on, one line each (like
# OpenTelemetry's console exporter), to see what a program reports while writing it. One print
# per batch, so lines of several processes sharing stderr do not interleave within a batch.
sub _print_events {
    my ($lines) = @_;
    local $!;
    print STDERR join '', map { 'wafermon: send ' . ($_ =~ s/\n\z//r) . "\n" } @$lines;
}

# Events the replayer delivered but the sidecar refused for good: say so here, where the
# application's warnings go (the replayer itself only has its log file).
sub _report_refusals {
    my ($self) = @_;
    return unless $self->{background};
    my $state = $self->{spool}->read_json('state') or return;
    return unless ($state->{owner} // 0) == $$;
    my $new = ($state->{refused} // 0) - ($self->{refusals_reported} // 0);
    return unless $new > 0;
    $self->{refusals_reported} = $state->{refused};
    Carp::carp("wafermon: the sidecar refused $new event(s) for good; last: " . ($state->{last_refusal} // '?'));
}

sub _count_sent {
    my ($self, $lines, $refused) = @_;
    $self->{stats}{sent} += @$lines - @$refused;
    return unless @$refused;
    $self->{stats}{refused} += @$refused;
    for my $r (@$refused[0 .. ($#$refused < 4 ? $#$refused : 4)]) {
        my $id = eval { WaferMon::Wire::decode_json($lines->[$r->[0]])->{event_id} } // '?';
        $self->{stats}{last_error} = "$self->{sink}{name} refused event $id: $r->[1]";
        Carp::carp("wafermon: $self->{stats}{last_error}");
    }
}

sub _to_spool {
    my ($self, $lines, $retry_after) = @_;
    my $ok = eval {
        $self->{spool}->append($lines);
        if (defined $retry_after) {
            my $ra = $retry_after < $self->{settings}{retry_max_delay} ? $retry_after : $self->{settings}{retry_max_delay};
            $self->{spool}->set_not_before(Time::HiRes::time() + $ra);
        }
        1;
    };
    if (!$ok) {
        my $why = $@ =~ s/\s+\z//r;
        $self->{stats}{dropped} += @$lines;
        $self->{stats}{last_error} = "dropped " . @$lines . " events: the disk spool refused them: $why";
        Carp::carp("wafermon: $self->{stats}{last_error}");
        return;
    }
    $self->{stats}{spooled} += @$lines;
    $self->{spool_pending} = 1;
    $self->_ensure_replayer;
    $self->_wake_replayer;
}

# SIGUSR1 to the replayer at work on this spool: it stops idling and sends at once. Only a pid
# read from the held replay.lock is signalled (it has its handler by then), and only if that
# process is still a replayer.
sub _wake_replayer {
    my ($self) = @_;
    my ($pid) = $self->{spool}->replayer;
    return unless $pid && $pid > 1 && _is_replayer($pid);
    $self->{replayer_pid_seen} = $pid;
    kill 'USR1', $pid;
}

# Wait until the spool is empty (true), $timeout passes, or the replayer gives up on an attempt
# made after the wait began (false). While closing, any failed attempt ends the wait.
sub _wait_for_spool {
    my ($self, $timeout, $closing) = @_;
    return 1 unless $self->{spool_pending} || $self->{spool}->pending;
    my $t0 = Time::HiRes::time();
    $self->_wake_replayer;
    my $spawned = 0;
    while (1) {
        if (!$self->{spool}->pending) {
            $self->{spool_pending} = 0;
            $self->_report_refusals;
            return 1;
        }
        my $state = $self->{spool}->read_json('state');
        if ($state && $state->{time} >= $t0) {
            return 0 if $state->{status} eq 'exhausted' || ($closing && $state->{status} eq 'retrying');
        }
        # Closing while the replayer is already failing: do not wait out its backoff (at exit
        # too); the spool keeps the events for the next start.
        if ($closing && $state && $state->{status} =~ /\A(?:retrying|exhausted)\z/) {
            my ($holder) = $self->{spool}->replayer;    # the state must be the running one's
            return 0 if $holder && ($state->{pid} // 0) == $holder;
        }
        my $now = Time::HiRes::time();
        return 0 if $now - $t0 >= $timeout;
        if ($now - $spawned > $self->{settings}{replay_interval}) {    # one that exited is restarted
            $self->_ensure_replayer;
            $spawned = $now;
        }
        Time::HiRes::sleep(0.01);
    }
}

# ---- the replayer process ----------------------------------------------------------------------

sub _ensure_replayer {
    my ($self) = @_;
    my $spool = $self->{spool};
    # One just started (it takes the lock some milliseconds later): do not start a second.
    my $last = $self->{replayer_pids}[-1];
    return if $last && _alive($last) && Time::HiRes::time() - $self->{replayer_started} < $self->{settings}{replay_interval};
    my $lock = eval { $spool->try_replay_lock } or return;    # one is at work (or no folder)
    CORE::close($lock);
    my $lib = File::Spec->rel2abs(File::Basename::dirname($INC{'WaferMon.pm'}));
    my $input = WaferMon::Wire::encode_json({ settings => { %{ $self->{settings} }, _background => $self->{background} ? 1 : 0 }, owner => $$ });
    # fork twice so the replayer is nobody's child here (an application's wait() never sees it),
    # then exec a fresh perl: it inherits no file descriptor but the pipes and runs no END block.
    pipe my $r, my $w or return;
    pipe my $pid_r, my $pid_w or return;
    my $pid = fork;
    return unless defined $pid;
    if ($pid == 0) {
        CORE::close($w);
        CORE::close($pid_r);
        eval {
            POSIX::setsid();
            my $grandchild = fork;
            if (defined $grandchild && $grandchild == 0) {
                CORE::close($pid_w);
                open STDIN, '<&', $r or POSIX::_exit(1);
                open STDOUT, '>', '/dev/null';
                my $log = $spool->dir . '/replayer.log';
                # Its warnings go to a private log that never outgrows 1 MiB by much.
                open STDERR, ((-s $log // 0) > 2**20 ? '>' : '>>'), $log if -w $spool->dir;
                chmod 0600, $log;
                # $^X is the running perl, unless perl is embedded (mod_perl: httpd).
                my $perl = $^X =~ m{perl[\d.]*\z} ? $^X : $Config::Config{perlpath};
                { exec $perl, "-I$lib", '-MWaferMon::Replayer', '-e', 'WaferMon::Replayer::main()'; }
                POSIX::_exit(127);
            }
            syswrite $pid_w, ($grandchild // 0) . "\n";
        };
        POSIX::_exit(0);
    }
    CORE::close($r);
    CORE::close($pid_w);
    local $SIG{PIPE} = 'IGNORE';
    print {$w} $input;
    CORE::close($w);
    my $grandchild = <$pid_r>;
    CORE::close($pid_r);
    waitpid $pid, 0;
    if ($grandchild && $grandchild > 0) {
        chomp $grandchild;
        @{ $self->{replayer_pids} } = ((grep { _alive($_) } @{ $self->{replayer_pids} || [] }), $grandchild);
        $self->{replayer_started} = Time::HiRes::time();
    }
}

sub _alive { my ($pid) = @_; kill(0, $pid) ? 1 : 0 }

# Stop the replayers this client started (each ends after its current request, so nothing
# acknowledged is sent twice); the spool keeps the rest for the next start.
sub _stop_replayer {
    my ($self) = @_;
    my @pids = grep { _alive($_) && _is_replayer($_) } @{ delete $self->{replayer_pids} || [] };
    return unless @pids;
    kill 'TERM', @pids;
    my $until = Time::HiRes::time() + 5;
    while (Time::HiRes::time() < $until && grep { _alive($_) && _is_replayer($_) } @pids) {
        Time::HiRes::sleep(0.01);
    }
}

# Guards against a recycled pid: the process must still be a replayer.
sub _is_replayer {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/cmdline" or return 1;    # no /proc: trust the pid
    my $cmd = do { local $/; <$fh> } // '';
    return $cmd =~ /WaferMon::Replayer/ ? 1 : 0;
}

sub DESTROY {
    my ($self) = @_;
    return if ${^GLOBAL_PHASE} eq 'DESTRUCT';
    local ($@, $!, $?);
    eval { $self->close } if !$self->{closed} && ($self->{pid} // 0) == $$;
}

END {
    local ($@, $!, $?);
    for my $client (grep { defined } values %LIVE) {
        eval { $client->close } if !$client->{closed};
    }
}

1;

__END__

=head1 NAME

WaferMon - send job events to wafermon from Perl, with no event loop and no blocking

=head1 SYNOPSIS

    use WaferMon qw(monitored);

    my $wm = WaferMon->new(site_id => 'fab1');          # + WAFERMON_* variables

    # A block as a job: finished when it returns, failed (and rethrown) when it dies.
    monitored {
        my ($lot) = @_;
        for my $n (1 .. 25) {
            my $wafer = $lot->subjob(sub_key => "wafer-$n");
            etch($n);
            $wafer->tick(0.5, { chamber => 'B' });       # progress + metadata
            $wafer->finish;
        }
    } client => $wm, app => { name => 'etch', version => '2.1' }, business_key => 'LOT-1001';

    # Or a guard object: finished when it goes out of scope, failed while a die unwinds.
    {
        my $job = $wm->job(app => 'sort', business_key => 'LOT-1002');
        $job->tick(progress => 0.3, metadata => { step => 'load' });
        sort_lot();
    }

    $wm->emit_event({ schema_version => 1, event_id => $uuid, kind => 'started', ... });
    $wm->flush(5) or warn "not delivered yet: ", $wm->stats->{last_error};
    $wm->close;                                           # also done at exit

=head1 DESCRIPTION

Events go to the node's B<sidecar> over HTTP (C<POST /v1/ingest/events>, NDJSON) or,
in B<direct> mode, are appended to C<ROOT/{site_id}/{UTC date}/events.jsonl>, the
filesystem backend's layout. The wire format, settings and C<WAFERMON_*> variables are
the ones every wafermon SDK shares (F<conformance/PROTOCOL.md>, F<docs/sdk-perl.md>).

The caller never waits for the network. In sidecar mode a batch (C<batch_size> events,
what a call finds buffered once C<flush_interval> has passed since the last hand-off, or a
top-level job's start or end) is appended to the spool folder, and a small replayer process (started by the SDK
with fork and exec, one per spool folder) sends it, retries with backoff, honours
C<Retry-After>, splits on 413, and keeps everything on disk while the sidecar is down.
No thread, no timer, no event loop: the replayer is a separate process.

It is fork-safe: a child process never sends the events its parent had buffered, never
ends its parent's jobs, and sends its own.

=head1 METHODS

=head2 new(%settings)

Settings are read from, in order: the defaults, a YAML or TOML file (C<config_file>
or C<WAFERMON_SDK_CONFIG>), C<WAFERMON_*> variables, then C<%settings>. Keys: C<mode>,
C<sidecar_url>, C<token>, C<site_id>, C<direct_url>, C<spool_dir>, C<spool_max_bytes>,
C<queue_size>, C<batch_size>, C<flush_interval>, C<timeout>, C<max_retries>,
C<enable_retries>, C<retry_base_delay>, C<retry_max_delay>, C<replay_interval>,
C<flush_timeout>, C<verify_tls>, C<console>, and for Perl only C<delivery> (C<background>/C<inline>),
C<inline_timeout> and C<fsync>. Also C<metadata> (a hash ref added to every job's
metadata) and C<app> (the default application). A bad setting dies with a
L<WaferMon::ConfigError> naming every fault: C<WAFERMON_MODE: must be one of sidecar,
direct, got 'sidcar'>.

C<< console => 1 >> (or C<WAFERMON_CONSOLE=1>) prints each event's wire JSON to STDERR as
it is handed on, one C<wafermon: send {...}> line per event: to see what a program reports
while writing it.

=head2 job(%options)

Starts a job (emits C<started>) and returns a L<WaferMon::Job>. Options: C<app> (a name
or C<< { name, version, app_id } >>), C<version>, C<business_key>, C<sub_key>,
C<metadata>, C<entity_id>, C<site_id>.

=head2 monitored { ... } %options

Exported on request. Runs the block with the job as its argument; returns the block's
value. C<client> defaults to C<< WaferMon->default >>; C<parent> makes it a subjob. A
subjob started inside the block (C<< $job->subjob >>, or C<parent> being this job or its id)
without a C<business_key> of its own takes this job's, as the Python SDK's enclosing
C<Monitored> does; an explicit one wins.

=head2 emit_event($event), emit_batch(\@events)

Queue events in wire form (hash refs or JSON text). An event missing a required field
or with an unknown C<kind> is refused here (a warning, counted in C<rejected>); the
sidecar checks the rest against the schema. C<emit_event> returns 1 or 0,
C<emit_batch> the number queued.

=head2 flush($timeout)

Hands over what is buffered and waits at most C<$timeout> seconds (default
C<flush_timeout>) until the spool is empty. True when everything was delivered; false
after the timeout or once the replayer has used up its retries.

=head2 close($timeout)

Flushes, then stops this client's replayer. What is still undelivered stays in the
spool and is sent by the next client that starts with the same C<spool_dir>. Called for
every open client at exit.

=head2 stats

Counters: C<queued>, C<pending> (buffered), C<spooled> (handed to the spool), C<sent>,
C<refused>, C<requests>, C<retries> (the replayer's), C<dropped>, C<rejected>,
C<last_error>, C<spool_pending>.

=head2 default

The process's default client, made from the environment on first use.

=head1 SEE ALSO

L<WaferMon::Job>, L<WaferMon::Config>, F<docs/sdk-perl.md> in the wafermon repository.

=cut
