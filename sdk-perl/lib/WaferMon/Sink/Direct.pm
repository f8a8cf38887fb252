package WaferMon::Sink::Direct;
# ABSTRACT: direct mode: append NDJSON lines to ROOT/{site_id}/{UTC date}/events.jsonl.

use strict;
use warnings;

use Fcntl qw(O_WRONLY O_APPEND O_CREAT :flock);
use File::Path ();
use IO::Handle ();
use WaferMon::Wire ();

our $VERSION = '0.1.0';

my $SITE_ID = qr/\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\z/;

# The filesystem backend's layout (docs/backends/filesystem.md), so the gateway's filesystem
# query adapter reads what this writes; the backend rotates and compresses, this only appends.
sub new {
    my ($class, $settings) = @_;
    return bless { name => 'direct', root => $settings->direct_root, fsync => $settings->{fsync} }, $class;
}

# Same answer as the sidecar sink: {ok => 1, refused => [...]} or {ok => 0, error => ...}.
sub deliver {
    my ($self, $lines) = @_;
    my (%groups, @order, @refused);
    for my $i (0 .. $#$lines) {
        my $event = eval { WaferMon::Wire::decode_json($lines->[$i]) };
        my $site = ref $event eq 'HASH' ? $event->{site_id} : undef;
        my $date = ref $event eq 'HASH' ? WaferMon::Wire::utc_date($event->{time}) : undef;
        if (!defined $site || $site !~ $SITE_ID || !defined $date) {
            push @refused, [$i, 'site_id or time missing or invalid: the event has no folder'];
            next;
        }
        my $key = "$site/$date";
        push @order, $key unless $groups{$key};
        push @{ $groups{$key} }, $lines->[$i];
    }
    for my $key (@order) {
        my $dir = "$self->{root}/$key";
        my $path = "$dir/events.jsonl";
        my $ok = eval {
            if (!-d $dir) {
                File::Path::make_path($dir, { error => \my $err });
                die "cannot create $dir: " . join(', ', map { values %$_ } @$err) . "\n" if $err && @$err;
            }
            sysopen my $fh, $path, O_WRONLY | O_APPEND | O_CREAT, 0644 or die "cannot open $path: $!\n";
            # One locked write per file and batch: lines of concurrent writers never interleave.
            flock $fh, LOCK_EX or die "cannot lock $path: $!\n";
            my $data = join '', @{ $groups{$key} };
            my $size = -s $fh;
            my $wrote = syswrite $fh, $data;
            if (!defined $wrote || $wrote != length $data) {
                my $why = $! || 'short write';
                truncate $fh, $size;    # undo a partial batch: a resend must not leave a torn line
                die "cannot write $path: $why\n";
            }
            if ($self->{fsync}) { $fh->sync or die "cannot fsync $path: $!\n" }
            CORE::close($fh);
            1;
        };
        if (!$ok) {
            my $err = $@ =~ s/\s+\z//r;
            return { ok => 0, error => "direct $self->{root}: $err" };
        }
    }
    return { ok => 1, refused => \@refused };
}

sub release { }

1;

__END__

=head1 NAME

WaferMon::Sink::Direct - a destination of batches (internal)

=head1 DESCRIPTION

C<deliver(\@lines)> returns C<< {ok => 1, refused => [[index, why], ...]} >> or C<< {ok => 0, error => $text, retry_after => $seconds} >>.

=cut
