package WaferMon::Wire;
# ABSTRACT: wire events as NDJSON lines: ids, times, the parts a job shares, checks.

use strict;
use warnings;

use POSIX ();
use Sys::Hostname ();
use Time::HiRes ();
use Time::Local ();

our $VERSION = '0.1.0';

# JSON::XS when Debian's libjson-xs-perl is there (about 10x faster), else core JSON::PP:
# both have the same OO interface. ->utf8 makes bytes, which HTTP::Tiny and files want.
our $JSON = eval { require JSON::XS; JSON::XS->new->utf8->allow_nonref->allow_blessed->convert_blessed }
    || do { require JSON::PP; JSON::PP->new->utf8->allow_nonref->allow_blessed->convert_blessed };

our $SCHEMA_VERSION      = 1;
our $METADATA_MAX_BYTES  = 16384;
our $TRUNCATED_KEY       = 'wafermon_sdk_truncated';
our ($ERROR_TYPE_MAX, $ERROR_MESSAGE_MAX, $ERROR_STACK_MAX) = (256, 8192, 65536);
our %KINDS = map { $_ => 1 } qw(started progress finished failed);

# ---- ids: UUID v4 from the OS's CSPRNG --------------------------------------------------------
# Crypt::URandom (getrandom(2) or /dev/urandom) when Debian's libcrypt-urandom-perl is there,
# else /dev/urandom itself. 4 KiB are read at a time (256 ids) to keep a system call off most
# events; the pool belongs to one pid, so a forked child never reuses its parent's bytes.
my ($pool, $pool_pid) = ('', -1);

sub _random_bytes {
    my ($n) = @_;
    if (eval { require Crypt::URandom; 1 }) {
        return Crypt::URandom::urandom($n);
    }
    open my $fh, '<:raw', '/dev/urandom' or die "wafermon: cannot open /dev/urandom: $!";
    my $buf;
    my $got = read $fh, $buf, $n;
    die "wafermon: short read from /dev/urandom" unless defined $got && $got == $n;
    return $buf;
}

sub new_id {
    if ($pool_pid != $$ || length $pool < 16) {
        $pool = _random_bytes(4096);
        $pool_pid = $$;
    }
    my $h = unpack 'H32', substr($pool, 0, 16, '');
    substr($h, 12, 1, '4');                                          # version 4
    substr($h, 16, 1, (qw(8 9 a b))[hex(substr $h, 16, 1) & 3]);     # RFC 4122 variant
    return join '-', substr($h, 0, 8), substr($h, 8, 4), substr($h, 12, 4), substr($h, 16, 4), substr($h, 20);
}

# ---- time -------------------------------------------------------------------------------------
my ($last_sec, $last_prefix) = (-1, '');

# RFC 3339 UTC with Z and six fraction digits, from an epoch float.
sub rfc3339 {
    my ($t) = @_;
    my $sec = int $t;
    my $us = int(($t - $sec) * 1e6 + 0.5);
    if ($us >= 1_000_000) { $sec++; $us -= 1_000_000 }
    if ($sec != $last_sec) {
        $last_prefix = POSIX::strftime('%Y-%m-%dT%H:%M:%S', gmtime $sec);
        $last_sec = $sec;
    }
    return sprintf '%s.%06dZ', $last_prefix, $us;
}

# The UTC date (YYYY-MM-DD) of an RFC 3339 time; undef if it is not one.
sub utc_date {
    my ($time) = @_;
    my ($y, $mo, $d, $h, $mi, $s, $zone) = ($time // '') =~
        /\A(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.\d+)?([Zz]|[+-]\d\d:\d\d)\z/ or return undef;
    return "$y-$mo-$d" if uc $zone eq 'Z';
    my ($sign, $zh, $zm) = $zone =~ /([+-])(\d\d):(\d\d)/;
    my $epoch = eval { Time::Local::timegm($s, $mi, $h, $d, $mo - 1, $y) } // return undef;
    $epoch -= ($sign eq '+' ? 1 : -1) * ($zh * 3600 + $zm * 60);
    return POSIX::strftime('%Y-%m-%d', gmtime $epoch);
}

# ---- source ------------------------------------------------------------------------------------
my ($host_pid, $host) = (-1, undef);

sub source {
    my ($sdk_version) = @_;
    if ($host_pid != $$) { $host = substr(Sys::Hostname::hostname(), 0, 256); $host_pid = $$ }
    return { host => $host, pid => $$ + 0, sdk => 'perl', sdk_version => $sdk_version };
}

# The JSON text of the parts every event of one job shares, without the braces, so that a
# lifecycle line is one string concatenation plus the small per-event parts.
sub head_json {
    my (%h) = @_;
    my $json = $JSON->encode({
        schema_version => $SCHEMA_VERSION,
        site_id        => $h{site_id},
        app            => $h{app},
        entity         => $h{entity},
        source         => source($h{sdk_version}),
    });
    return substr $json, 1, -1;
}

# One lifecycle event as an NDJSON line; (line, 1) when the metadata had to be replaced.
sub lifecycle_line {
    my ($head, $kind, $time, $metrics, $metadata_json, $error) = @_;
    my $line = '{"event_id":"' . new_id() . '","kind":"' . $kind . '","time":"' . rfc3339($time) . '",' . $head;
    $line .= ',"metrics":' . $JSON->encode($metrics) if $metrics;
    $line .= ',"metadata":' . $metadata_json if defined $metadata_json;
    $line .= ',"error":' . $JSON->encode($error) if $error;
    return $line . "}\n";
}

# Metadata as compact JSON, or the note that replaces it above the schema's byte cap
# (the cap counts the UTF-8 bytes of the compact JSON, as the other SDKs do); undef if empty.
sub metadata_json {
    my ($metadata) = @_;
    return (undef, 0) if !$metadata || !%$metadata;
    my $json = $JSON->encode($metadata);
    return ($json, 0) if length $json <= $METADATA_MAX_BYTES;
    my $size = length $json;
    return ($JSON->encode({ $TRUNCATED_KEY =>
        "metadata of $size bytes was above the $METADATA_MAX_BYTES-byte cap and was dropped" }), 1);
}

# The error object of a failed event: type (the exception's class, or what the caller named),
# message and stack within the schema's limits.
sub error_info {
    my ($err, $type) = @_;
    my ($message, $stack);
    if (ref $err && eval { $err->can('message') }) {
        $message = $err->message;
        $stack = eval { $err->can('trace') && "" . $err->trace };
    } elsif (ref $err) {
        $message = "$err";
    } else {
        $message = $err // 'unknown error';
    }
    $type //= (ref($err) && ref($err) !~ /\A(?:HASH|ARRAY|SCALAR|CODE|REF|GLOB)\z/) ? ref($err) : "die";
    $message = "$message";
    if (!defined $stack && $message =~ /\A(.*?)( at \S+ line \d+\.?\n?.*)\z/s) {
        my ($head, $where) = ($1, $2);
        $stack = $where =~ s/\A\s+|\s+\z//gr;
        $message = $head;
    }
    $message =~ s/\s+\z//;
    my %e = (type => substr($type, 0, $ERROR_TYPE_MAX), message => substr($message, 0, $ERROR_MESSAGE_MAX));
    if (defined $stack && length $stack) {
        $stack = "...\n" . substr($stack, -($ERROR_STACK_MAX - 4)) if length $stack > $ERROR_STACK_MAX;
        $e{stack} = $stack;
    }
    return \%e;
}

# A wire-form event (hash ref or JSON text) as an NDJSON line, plus its site_id and time, or
# dies with the field and the reason. The sidecar checks the rest against the schema.
sub event_line {
    my ($event) = @_;
    if (!ref $event) {
        my $text = $event;
        $event = eval { $JSON->decode($text) };
        die "not valid JSON: $@" if $@;
    }
    ref $event eq 'HASH' or die 'expected a hash ref or a JSON object, got ' . (ref $event || 'a plain scalar') . "\n";
    for my $field (qw(schema_version event_id kind time site_id app entity)) {
        die "$field: missing\n" unless defined $event->{$field};
    }
    die "kind: must be one of started, progress, finished, failed, got '$event->{kind}'\n"
        unless $KINDS{ $event->{kind} };
    die "time: expected RFC 3339 with a time zone, got '$event->{time}'\n" unless defined utc_date($event->{time});
    die "app.name: missing\n" unless ref $event->{app} eq 'HASH' && defined $event->{app}{name};
    die "entity: expected an object with type and id\n"
        unless ref $event->{entity} eq 'HASH' && defined $event->{entity}{type} && defined $event->{entity}{id};
    return $JSON->encode($event) . "\n";
}

sub decode_json { $JSON->decode($_[0]) }
sub encode_json { $JSON->encode($_[0]) }

1;

__END__

=head1 NAME

WaferMon::Wire - wire events as NDJSON lines (internal)

=head1 DESCRIPTION

UUID v4 ids from the OS CSPRNG (Crypt::URandom or F</dev/urandom>, pooled per pid),
RFC 3339 times with six fraction digits, the metadata cap (16384 bytes of compact JSON),
error objects, and the light check of wire-form events.

=cut
