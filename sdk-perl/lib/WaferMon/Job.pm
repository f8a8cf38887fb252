package WaferMon::Job;
# ABSTRACT: a monitored job or subjob: started on creation, progress ticks, finished or failed.

use strict;
use warnings;

use Carp ();
use Scalar::Util ();
use Time::HiRes ();
use WaferMon::Wire ();

our $VERSION = '0.1.0';

my $ENTITY_ID_MAX = 256;

# The job whose monitored { } block is running (innermost), as the Python SDK's enclosing
# Monitored: a subjob of it started inside the block takes its business key.
our $ENCLOSING;

# Made by WaferMon->job / ->monitored and Job->subjob, never directly.
sub _new {
    my ($class, $client, %opt) = @_;
    my $type = $opt{entity_type} // 'job';
    Carp::croak("entity_type: must be 'job' or 'subjob', got '$type'") unless $type eq 'job' || $type eq 'subjob';
    my $site_id = $opt{site_id} // $client->{settings}{site_id}
        // Carp::croak('site_id: not given and the client has none (set WAFERMON_SITE_ID)');
    my $app = $opt{app} // $client->{app} // ($0 =~ s{.*/}{}r || 'perl');
    $app = { name => $app } unless ref $app;
    Carp::croak('app: expected a name or a hash ref with name (and version, app_id)')
        unless ref $app eq 'HASH' && defined $app->{name} && length $app->{name};
    $app = { %$app };
    $app->{version} = $opt{version} if defined $opt{version};
    delete @$app{ grep { !defined $app->{$_} } keys %$app };
    my $parent = $opt{parent};
    my $parent_id = ref $parent ? $parent->entity_id : $parent;
    Carp::croak('parent: a subjob needs its parent job (or its id)') if $type eq 'subjob' && !defined $parent_id;
    my $id = $opt{entity_id} // WaferMon::Wire::new_id();
    Carp::croak("entity_id: 1-$ENTITY_ID_MAX characters") if !length $id || length $id > $ENTITY_ID_MAX;
    my %entity = (type => $type, id => "$id");
    $entity{parent_id} = "$parent_id" if defined $parent_id;
    # A subjob without its own key takes its parent's (the lot's), so a query by lot finds its
    # wafers too: from the parent job given, or, given only its id, from the monitored { } block
    # of that job it runs in.
    my $business_key = $opt{business_key};
    if ($type eq 'subjob' && !defined $business_key) {
        if (ref $parent) {
            $business_key = $parent->{entity}{business_key};
        } elsif ($ENCLOSING && defined $parent_id && $ENCLOSING->{entity}{id} eq $parent_id) {
            $business_key = $ENCLOSING->{entity}{business_key};
        }
    }
    $entity{business_key} = "$business_key" if defined $business_key;
    $entity{sub_key} = "$opt{sub_key}" if defined $opt{sub_key};
    my %metadata = (%{ $client->{metadata} || {} }, %{ $opt{metadata} || {} });
    my $self = bless {
        client   => $client,
        pid      => $$,
        site_id  => $site_id,
        app      => $app,
        entity   => \%entity,
        metadata => \%metadata,
        status   => 'running',
        dollar_at => "$@",    # a stale $@ from before the job is no failure of the job
    }, $class;
    $self->_set_metadata(\%metadata);
    $self->_head;
    $self->{t0} = Time::HiRes::time();
    $self->{cpu0} = [ (times)[0, 1] ];
    $client->_lifecycle($self, 'started', $self->{t0}, undef, undef, $type eq 'job');
    return $self;
}

# The metadata every later event carries, encoded once; above the cap it is replaced by a
# note (counted in the client's stats and warned about, so the cut is never silent).
sub _set_metadata {
    my ($self, $metadata) = @_;
    my ($json, $cut) = WaferMon::Wire::metadata_json($metadata);
    $self->{meta_json} = $json;
    if ($cut) {
        $self->{client}{stats}{metadata_truncated}++;
        Carp::carp("wafermon: the metadata of job $self->{entity}{id} is above "
            . "$WaferMon::Wire::METADATA_MAX_BYTES bytes of JSON and is replaced by a note");
    }
}

sub _head {
    my ($self) = @_;
    $self->{head_pid} = $$;
    return $self->{head} = WaferMon::Wire::head_json(
        site_id => $self->{site_id}, app => $self->{app}, entity => $self->{entity},
        sdk_version => $WaferMon::Wire::VERSION);
}

sub head { $_[0]{head_pid} == $$ ? $_[0]{head} : $_[0]->_head }

sub entity_id { $_[0]{entity}{id} }
sub status    { $_[0]{status} }
sub metadata  { { %{ $_[0]{metadata} } } }
sub duration  { Time::HiRes::time() - $_[0]{t0} }

# tick($fraction) / tick($fraction, \%metadata) / tick(progress => 0.5, metadata => {...}):
# a progress event; metadata is merged (shallow) into the job's and carried from then on.
sub tick {
    my $self = shift;
    my ($progress, $meta);
    if (@_ == 1 && ref $_[0] eq 'HASH') { $meta = $_[0] }
    elsif (@_ && !ref $_[0] && @_ % 2 == 0 && defined $_[0] && $_[0] =~ /\A(?:progress|metadata)\z/) {
        my %a = @_; ($progress, $meta) = @a{qw(progress metadata)};
    } else { ($progress, $meta) = @_ }
    Carp::croak('tick: the job has ended (' . $self->{status} . ')') if $self->{status} ne 'running';
    return if $self->{pid} != $$;    # a forked child does not speak for its parent's job
    my $now = Time::HiRes::time();
    my %metrics = (duration_s => $now - $self->{t0});
    if (defined $progress) {
        Carp::croak("progress: expected a number from 0 to 1, got '$progress'")
            unless Scalar::Util::looks_like_number($progress) && $progress == $progress;
        $metrics{progress} = $progress < 0 ? 0 : $progress > 1 ? 1 : $progress + 0;
    }
    if ($meta && %$meta) {
        Carp::croak('metadata: expected a hash ref') unless ref $meta eq 'HASH';
        $self->{metadata} = { %{ $self->{metadata} }, %$meta };
        $self->_set_metadata($self->{metadata});
    }
    $self->{client}->_lifecycle($self, 'progress', $now, \%metrics);
    return $self;
}

# subjob(%options): a child entity of this job (sub_key, business_key, metadata, app).
sub subjob {
    my ($self, %opt) = @_;
    return WaferMon::Job->_new($self->{client}, app => $self->{app}, site_id => $self->{site_id},
        %opt, entity_type => 'subjob', parent => $self);
}

sub _end {
    my ($self, $kind, $error) = @_;
    return 0 if $self->{status} ne 'running';
    $self->{status} = $kind;
    return 0 if $self->{pid} != $$;
    my $now = Time::HiRes::time();
    my ($user, $system) = (times)[0, 1];
    my %metrics = (
        duration_s   => $now - $self->{t0},
        cpu_user_s   => _nonneg($user - $self->{cpu0}[0]),
        cpu_system_s => _nonneg($system - $self->{cpu0}[1]),
        mem_max_mb   => _mem_max_mb(),
    );
    $self->{client}->_lifecycle($self, $kind, $now, \%metrics, $error, $self->{entity}{type} eq 'job');
    return 1;
}

sub _nonneg { $_[0] > 0 ? $_[0] + 0 : 0 }

# Peak resident set size of the process (VmHWM), in MiB; 0 where /proc is missing.
sub _mem_max_mb {
    open my $fh, '<', '/proc/self/status' or return 0;
    while (<$fh>) { return $1 / 1024 if /\AVmHWM:\s+(\d+)\s+kB/ }
    return 0;
}

sub finish { $_[0]->_end('finished') }

# fail($error) / fail($error, type => 'fab.LotAbortedError'): $error is what die threw (a
# string or an exception object); the type defaults to the object's class, or 'die'.
sub fail {
    my ($self, $err, %opt) = @_;
    return $self->_end('failed', WaferMon::Wire::error_info($err, $opt{type}));
}

# A job that goes out of scope unended: failed if a die is unwinding through it (Perl sets $@
# before the scope's objects are destroyed), else finished. A die caught inside the job leaves
# $@ set too: end such a job yourself, or use monitored { }.
sub DESTROY {
    my ($self) = @_;
    return if ${^GLOBAL_PHASE} eq 'DESTRUCT' && !$self->{client};
    return if ($self->{status} // '') ne 'running' || ($self->{pid} // 0) != $$;
    return if !$self->{client} || $self->{client}{closed};    # closed: nothing to say it with
    my $err = $@;
    local ($@, $!, $?);
    if (defined $err && length $err && "$err" ne $self->{dollar_at}) {
        eval { $self->fail($err) };
    } else {
        eval { $self->finish };
    }
}

1;

__END__

=head1 NAME

WaferMon::Job - a monitored job or subjob

=head1 SYNOPSIS

    my $job = $wm->job(app => 'etch', business_key => 'LOT-1');
    my $sub = $job->subjob(sub_key => 'wafer-1');
    $sub->tick(0.5, { chamber => 'B' });
    $sub->finish;
    $job->fail($@, type => 'fab.LotAbortedError') if $broken;
    # unended at scope exit: finished, or failed while a die unwinds through it

=head1 METHODS

=over

=item tick($fraction, \%metadata) / tick(progress => $f, metadata => \%m)

A C<progress> event with C<duration_s> so far; C<$fraction> (0..1) becomes
C<metrics.progress>, C<%metadata> is merged into the job's metadata from then on.

=item subjob(%options)

A child entity (C<sub_key>, C<business_key>, C<metadata>, C<app>), started now. Without a
C<business_key> of its own it takes this job's, so a query by the lot finds its wafers too.

=item finish, fail($error, type => $name)

End the job: C<finished> or C<failed> with C<duration_s>, C<cpu_user_s> and
C<cpu_system_s> (from C<times()>, the process's CPU since the job started) and
C<mem_max_mb> (the process's peak resident size, VmHWM). C<fail> records the error's
class (or C<type>, or C<die>), its message and the C<at FILE line N> part as the stack.
A second end does nothing.

=item entity_id, status, metadata, duration

=back

=cut
