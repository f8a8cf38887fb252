package WaferMon::Config;
# ABSTRACT: the SDK's settings: defaults < file < WAFERMON_* < arguments, every fault named.

use strict;
use warnings;

use File::Spec ();

our $VERSION = '0.1.0';

# Names and defaults are the ones conformance/PROTOCOL.md shares between the SDKs.
our %DEFAULTS = (
    mode             => 'sidecar',
    sidecar_url      => 'http://127.0.0.1:17000',
    token            => undef,
    site_id          => undef,
    direct_url       => undef,
    spool_dir        => undef,        # filled in by default_spool_dir()
    spool_max_bytes  => 1 << 30,
    queue_size       => 10_000,
    batch_size       => 500,
    flush_interval   => 0.2,
    timeout          => 10,
    inline_timeout   => 2,            # Perl only: the caller's own attempt (the replayer uses timeout)
    max_retries      => 5,
    enable_retries   => 1,
    retry_base_delay => 0.2,
    retry_max_delay  => 30,
    replay_interval  => 1,
    flush_timeout    => 10,
    verify_tls       => 1,
    fsync            => 1,            # Perl only: direct mode fsyncs each file it appended to
    delivery         => undef,        # Perl only: background (sidecar default) or inline (direct default)
    console          => 0,            # debug: print each event to stderr as it is sent
);

my %TIME_UNITS = ('' => 1, ms => 0.001, s => 1, m => 60, h => 3600, d => 86400);
my %SIZE_UNITS = (
    '' => 1, b => 1, kb => 1e3, mb => 1e6, gb => 1e9, tb => 1e12,
    kib => 2**10, mib => 2**20, gib => 2**30, tib => 2**40,
);
my $SITE_ID = qr/\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\z/;

sub _seconds {
    my ($positive) = @_;
    return sub {
        my ($v) = @_;
        my ($n, $u) = "$v" =~ /\A\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*\z/
            or die "expected a duration such as 30, 500ms, 30s, 5m, 1h or 2d, got '$v'\n";
        exists $TIME_UNITS{lc $u}
            or die "expected a duration such as 30, 500ms, 30s, 5m, 1h or 2d, got '$v'\n";
        my $s = $n * $TIME_UNITS{lc $u};
        die "must be more than 0, got '$v'\n" if $positive && $s <= 0;
        return $s;
    };
}

sub _integer {
    my ($min) = @_;
    return sub {
        my ($v) = @_;
        "$v" =~ /\A\s*([+-]?[0-9]+)\s*\z/ or die "expected an integer, got '$v'\n";
        my $n = $1 + 0;
        die "must be at least $min, got $n\n" if $n < $min;
        return $n;
    };
}

sub _size {
    my ($v) = @_;
    my ($n, $u) = "$v" =~ /\A\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*\z/
        or die "expected a size such as 1048576, 512KiB, 64MiB or 1GB, got '$v'\n";
    exists $SIZE_UNITS{lc $u} or die "expected a size such as 1048576, 512KiB, 64MiB or 1GB, got '$v'\n";
    my $bytes = int($n * $SIZE_UNITS{lc $u});
    die "must be at least 1MiB, got '$v'\n" if $bytes < 2**20;
    return $bytes;
}

sub _boolean {
    my ($v) = @_;
    my $t = lc("$v" =~ s/\A\s+|\s+\z//gr);
    return 1 if $t =~ /\A(?:1|true|yes|on)\z/;
    return 0 if $t =~ /\A(?:0|false|no|off)\z/;
    die "expected true or false, got '$v'\n";
}

sub _url {
    my ($v) = @_;
    my $t = "$v" =~ s/\A\s+|\s+\z//gr;
    $t =~ m{\Ahttps?://(\[[0-9A-Fa-f:.]+\]|[^/:?#\s\@]+)(?::([0-9]*))?(?:[/?#]|\z)}
        or die "expected an http:// or https:// URL such as http://127.0.0.1:17000, got '$v'\n";
    die "has an invalid port: '$v'\n" if defined $2 && ($2 eq '' || $2 > 65535);
    return $t =~ s{/+\z}{}r;
}

my $DIRECT_HINT = 'expected file:///absolute/path or s3://bucket/prefix';

sub _direct_url {
    my ($v) = @_;
    my $t = "$v" =~ s/\A\s+|\s+\z//gr;
    if ($t =~ m{\Afile://(localhost)?(/.*)\z}s) {
        return $t;
    }
    die "$DIRECT_HINT (file:// and an absolute path), got '$v'\n" if $t =~ m{\Afile:}i;
    if ($t =~ m{\As3://([^/]+)}) {
        die "s3:// is not supported by the Perl SDK yet, got '$v'; use file:///absolute/path or the sidecar\n";
    }
    die "$DIRECT_HINT, got '$v'\n";
}

sub _site_id {
    my ($v) = @_;
    "$v" =~ $SITE_ID
        or die "must be 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit, got '$v'\n";
    return "$v";
}

sub _path {
    my ($v) = @_;
    my $t = "$v" =~ s/\A\s+|\s+\z//gr;
    die "must not be empty\n" if $t eq '';
    $t =~ s{\A~(?=/|\z)}{$ENV{HOME} // (getpwuid $<)[7]}e;
    return $t;
}

sub _choice {
    my @allowed = @_;
    return sub {
        my ($v) = @_;
        my $t = lc("$v" =~ s/\A\s+|\s+\z//gr);
        return $t if grep { $_ eq $t } @allowed;
        die 'must be one of ' . join(', ', @allowed) . ", got '$v'\n";
    };
}

our %PARSERS = (
    mode             => _choice(qw(sidecar direct)),
    sidecar_url      => \&_url,
    token            => sub { my ($v) = @_; "$v" eq '' ? undef : "$v" },
    site_id          => \&_site_id,
    direct_url       => \&_direct_url,
    spool_dir        => \&_path,
    spool_max_bytes  => \&_size,
    queue_size       => _integer(1),
    batch_size       => _integer(1),
    flush_interval   => _seconds(1),
    timeout          => _seconds(1),
    inline_timeout   => _seconds(1),
    max_retries      => _integer(0),
    enable_retries   => \&_boolean,
    retry_base_delay => _seconds(1),
    retry_max_delay  => _seconds(1),
    replay_interval  => _seconds(1),
    flush_timeout    => _seconds(0),
    verify_tls       => \&_boolean,
    fsync            => \&_boolean,
    delivery         => _choice(qw(background inline)),
    console          => \&_boolean,
    # Read by other SDKs; accepted here so one settings file serves them all.
    queue_full       => _choice(qw(block spool drop)),
    block_timeout    => _seconds(0),
    tracing          => sub { _boolean($_[0]) && die "is not supported by the Perl SDK\n"; 0 },
    site_config      => sub { die "is not supported by the Perl SDK: use direct_url (file:///...)\n" },
);

sub env_name {
    my ($name) = @_;
    return $name eq 'site_config' ? 'WAFERMON_CONFIG' : 'WAFERMON_' . uc $name;
}

sub default_spool_dir {
    my $cache = $ENV{XDG_CACHE_HOME} || File::Spec->catdir($ENV{HOME} // (getpwuid $<)[7], '.cache');
    return File::Spec->catdir($cache, 'wafermon-sdk', 'spool');
}

# The settings of a YAML (.yaml/.yml, via YAML::XS) or TOML (.toml, via TOML::Tiny) file,
# at the top level or under a wafermon_sdk key: the file the Python SDK reads.
sub read_file {
    my ($path) = @_;
    open my $fh, '<:raw', $path or die WaferMon::ConfigError->new(["$path: cannot read settings file: $!"]);
    my $text = do { local $/; <$fh> };
    CORE::close($fh);
    my $data;
    if ($path =~ /\.toml\z/i) {
        require TOML::Tiny;
        my ($parsed, $err) = eval { TOML::Tiny::from_toml($text) };
        $err //= $@;
        die WaferMon::ConfigError->new(["$path: not valid TOML: $err"]) if $err;
        $data = $parsed;
    } elsif ($path =~ /\.ya?ml\z/i) {
        require YAML::XS;
        $data = eval { YAML::XS::Load($text) } // {};
        die WaferMon::ConfigError->new(["$path: not valid YAML: $@"]) if $@;
    } else {
        die WaferMon::ConfigError->new(["$path: expected a .yaml, .yml or .toml file"]);
    }
    die WaferMon::ConfigError->new(["$path: expected a mapping of settings"]) if ref $data ne 'HASH';
    my $section = exists $data->{wafermon_sdk} ? $data->{wafermon_sdk} : $data;
    die WaferMon::ConfigError->new(["$path: wafermon_sdk: expected a mapping of settings"])
        if ref $section ne 'HASH';
    return $section;
}

# load(%args): defaults < config_file (or $ENV{WAFERMON_SDK_CONFIG}) < WAFERMON_* < %args.
# Dies with a WaferMon::ConfigError listing every fault under the name the user wrote.
sub load {
    my ($class, %args) = @_;
    my (%values, %given_as, @problems);
    my $take = sub {
        my ($name, $raw, $where) = @_;
        if (!exists $PARSERS{$name}) {
            push @problems, "$where: unknown setting (known: " . join(', ', sort keys %PARSERS) . ')';
            return;
        }
        if (!defined $raw) { delete $values{$name}; return }
        my $value = eval { $PARSERS{$name}->(ref $raw eq 'JSON::PP::Boolean' ? ($raw ? 'true' : 'false') : $raw) };
        if (my $err = $@) { chomp $err; push @problems, "$where: $err"; return }
        $values{$name} = $value;
        $given_as{$name} = $where;
    };
    my $file = delete $args{config_file};
    $file = $ENV{WAFERMON_SDK_CONFIG} if !defined $file && defined $ENV{WAFERMON_SDK_CONFIG} && $ENV{WAFERMON_SDK_CONFIG} =~ /\S/;
    if (defined $file) {
        my $section = read_file($file);
        $take->($_, $section->{$_}, "$file: $_") for sort keys %$section;
    }
    for my $name (sort keys %PARSERS) {
        my $raw = $ENV{ env_name($name) };
        next unless defined $raw;
        next unless $raw =~ /\S/ || $name eq 'token';
        $take->($name, $raw, env_name($name));
    }
    $take->($_, $args{$_}, $_) for sort keys %args;
    die WaferMon::ConfigError->new(\@problems) if @problems;

    my %s = (%DEFAULTS, %values);
    $s{spool_dir} //= default_spool_dir();
    delete @s{qw(queue_full block_timeout tracing site_config)};
    if ($s{mode} eq 'direct' && !defined $s{direct_url}) {
        die WaferMon::ConfigError->new([
            'WAFERMON_DIRECT_URL: direct mode needs a target: WAFERMON_DIRECT_URL=file:///absolute/path'
            . ' (' . ($given_as{mode} // 'mode') . " is 'direct')"
        ]);
    }
    if ($s{retry_max_delay} < $s{retry_base_delay}) {
        die WaferMon::ConfigError->new([
            ($given_as{retry_max_delay} // 'retry_max_delay') . ' must not be less than '
            . ($given_as{retry_base_delay} // 'retry_base_delay')
        ]);
    }
    return bless \%s, $class;
}

# The folder a file:// direct URL names (percent-escapes decoded).
sub direct_root {
    my ($self) = @_;
    my ($path) = $self->{direct_url} =~ m{\Afile://(?:localhost)?(/.*)\z}s;
    $path =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    return $path;
}

package WaferMon::ConfigError;
# A bad setting: ->problems lists them; it stringifies to "NAME: why; NAME: why".
use overload '""' => sub { join('; ', @{ $_[0]{problems} }) . "\n" }, fallback => 1;
sub new { my ($class, $problems) = @_; bless { problems => [@$problems] }, $class }
sub problems { @{ $_[0]{problems} } }
sub message { join '; ', @{ $_[0]{problems} } }

1;

__END__

=head1 NAME

WaferMon::Config - the SDK's settings and WaferMon::ConfigError

=head1 DESCRIPTION

C<< WaferMon::Config->load(%args) >> reads defaults, then the file C<config_file> or
C<WAFERMON_SDK_CONFIG> names (YAML via YAML::XS, TOML via TOML::Tiny; settings at the top
level or under C<wafermon_sdk>), then C<WAFERMON_*> variables, then C<%args>. Durations
take C<30>, C<500ms>, C<30s>, C<5m>, C<1h>, C<2d>; sizes C<1048576>, C<64MiB>, C<1GB>.
Every fault is collected and thrown as one L<WaferMon::ConfigError>, whose C<problems>
name the variable, file key or argument: C<WAFERMON_QUEUE_SIZE: must be at least 1, got 0>.

=cut
