package WaferMon::Sink::Sidecar;
# ABSTRACT: POST NDJSON batches to the local sidecar with HTTP::Tiny (core Perl, no event loop).

use strict;
use warnings;

use HTTP::Tiny ();
use WaferMon::Wire ();

our $VERSION = '0.1.0';

our $INGEST_PATH = '/v1/ingest/events';
# Answers that say "not now": retry later, then spool. 599 is HTTP::Tiny's own (connection
# refused, timeout, TLS): nothing can be assumed stored.
my %RETRYABLE = map { $_ => 1 } 401, 403, 404, 408, 425, 429;
my %SPLIT     = map { $_ => 1 } 413, 422;

# new(settings, timeout => seconds): one keep-alive connection, made in the process that uses it.
sub new {
    my ($class, $settings, %opt) = @_;
    my %headers = ('Content-Type' => 'application/x-ndjson');
    $headers{Authorization} = "Bearer $settings->{token}" if defined $settings->{token};
    return bless {
        name    => 'sidecar',
        url     => $settings->{sidecar_url} . $INGEST_PATH,
        headers => \%headers,
        timeout => $opt{timeout} // $settings->{timeout},
        verify  => $settings->{verify_tls},
        pid     => -1,
    }, $class;
}

sub _http {
    my ($self) = @_;
    # A keep-alive socket must not be shared with a forked child: each pid makes its own.
    if ($self->{pid} != $$) {
        $self->{http} = HTTP::Tiny->new(
            timeout    => $self->{timeout},
            agent      => "wafermon-sdk-perl/$WaferMon::Wire::VERSION",
            keep_alive => 1,
            verify_SSL => $self->{verify},
        );
        $self->{pid} = $$;
    }
    return $self->{http};
}

# send(\@lines): {ok => 1, refused => [[index, why], ...]} when the sidecar took the batch
# (the refused events are refused for good), or {ok => 0, error => text, retry_after => s}.
sub deliver {
    my ($self, $lines) = @_;
    $self->{requests}++;    # every HTTP request, the halves of a split batch too
    my $res = $self->_http->request('POST', $self->{url},
        { headers => $self->{headers}, content => join('', @$lines) });
    my $status = $res->{status};
    if ($status == 202 || ($status == 400 && _has_results($res))) {
        return { ok => 1, refused => _refusals($res) };
    }
    if ($SPLIT{$status}) {
        return { ok => 1, refused => [[0, "the sidecar answered $status: " . _reason($res)]] } if @$lines == 1;
        my $half = int(@$lines / 2);
        my $first = $self->deliver([ @$lines[0 .. $half - 1] ]);
        return $first unless $first->{ok};
        my $second = $self->deliver([ @$lines[$half .. $#$lines] ]);
        # The first half is stored: on a failure only the second half may be retried.
        return { %$second, done => $half + ($second->{done} // 0) } unless $second->{ok};
        return { ok => 1, refused => [ @{ $first->{refused} }, map { [$_->[0] + $half, $_->[1]] } @{ $second->{refused} } ] };
    }
    if ($status == 599) {
        my $why = $res->{content} // $res->{reason};
        $why =~ s/\s+\z//;
        return { ok => 0, error => "sidecar $self->{url} unreachable: $why" };
    }
    if ($status >= 500 || $RETRYABLE{$status}) {
        my $ra = $res->{headers}{'retry-after'};
        return {
            ok          => 0,
            error       => "sidecar answered $status: " . _reason($res),
            retry_after => (defined $ra && $ra =~ /\A\s*([0-9]+(?:\.[0-9]+)?)\s*\z/ ? $1 + 0 : undef),
        };
    }
    my $why = "the sidecar answered $status: " . _reason($res);
    return { ok => 1, refused => [ map { [$_, $why] } 0 .. $#$lines ] };
}

sub _decode { my $b = eval { WaferMon::Wire::decode_json($_[0]{content}) }; ref $b eq 'HASH' ? $b : undef }

sub _has_results { my $b = _decode($_[0]); $b && ref $b->{results} eq 'ARRAY' }

sub _refusals {
    my ($res) = @_;
    my $body = _decode($res) or return [];
    return [] if defined $body->{rejected} && !$body->{rejected};
    my @out;
    for my $r (@{ $body->{results} || [] }) {
        next unless ($r->{status} // '') eq 'rejected';
        my $why = join '; ', map { "$_->{path}: $_->{message}" } @{ $r->{errors} || [] };
        push @out, [$r->{index}, $why || 'rejected'];
    }
    return \@out;
}

sub _reason {
    my ($res) = @_;
    my $body = _decode($res);
    return substr("$body->{error}", 0, 500) if $body && defined $body->{error} && !ref $body->{error};
    return substr($res->{content} // '', 0, 200) || $res->{reason} // '';
}

sub release { delete $_[0]{http}; $_[0]{pid} = -1 }

1;

__END__

=head1 NAME

WaferMon::Sink::Sidecar - a destination of batches (internal)

=head1 DESCRIPTION

C<deliver(\@lines)> returns C<< {ok => 1, refused => [[index, why], ...]} >> or C<< {ok => 0, error => $text, retry_after => $seconds} >>.

=cut
