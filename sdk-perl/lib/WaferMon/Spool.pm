package WaferMon::Spool;
# ABSTRACT: the append-only disk spool of undelivered batches, shared by the SDK's processes.

use strict;
use warnings;

use Fcntl qw(O_WRONLY O_APPEND O_CREAT O_RDWR :flock);
use File::Path ();
use Time::HiRes ();
use WaferMon::Wire ();

our $VERSION = '0.1.0';

# Layout, under {spool_dir}/perl (0700; every file 0600):
#   seg-{ms}-{pid}-{random}.jsonl           a process appends its failed batches here
#   seg-....jsonl.claimed                   the replayer took it (renamed under the writer's lock)
#   seg-....jsonl.claimed.acked             bytes of it the destination has acknowledged
#   replay.lock                             flock held by the one replayer; holds "pid owner"
#   state                                   the replayer's last attempt (JSON), read by flush
#   not-before                              epoch before which nothing is sent (Retry-After)
# Appends and claims take an flock on the segment, and a writer re-checks after locking that
# its file was not claimed meanwhile, so no line is ever written to a file being replayed.

sub new {
    my ($class, %opt) = @_;
    my $dir = "$opt{dir}/perl";
    return bless { dir => $dir, max_bytes => $opt{max_bytes}, segment => undef, pid => $$ }, $class;
}

sub dir { $_[0]{dir} }

sub ensure_dir {
    my ($self) = @_;
    return if -d $self->{dir};
    File::Path::make_path($self->{dir}, { mode => 0700, error => \my $err });
    die "cannot create spool folder $self->{dir}: " . join(', ', map { values %$_ } @$err) . "\n"
        if $err && @$err && !-d $self->{dir};
    chmod 0700, $self->{dir};
}

sub _files {
    my ($self, $re) = @_;
    opendir my $dh, $self->{dir} or return ();
    my @names = sort grep { $_ =~ $re } readdir $dh;
    closedir $dh;
    return @names;
}

sub bytes {
    my ($self) = @_;
    my $total = 0;
    $total += (-s "$self->{dir}/$_") // 0 for $self->_files(qr/\Aseg-.*\.jsonl(?:\.claimed)?\z/);
    return $total;
}

# Whether any batch waits (own or another process's). One readdir: only called on slow paths.
sub pending {
    my ($self) = @_;
    my @f = $self->_files(qr/\Aseg-.*\.jsonl(?:\.claimed)?\z/);
    return @f ? 1 : 0;
}

# Append a batch; dies (spool full, disk error) without writing part of it.
sub append {
    my ($self, $lines) = @_;
    $self->ensure_dir;
    my $data = join '', @$lines;
    if ($self->bytes + length $data > $self->{max_bytes}) {
        die "the spool $self->{dir} is full ($self->{max_bytes} bytes, WAFERMON_SPOOL_MAX_BYTES)\n";
    }
    if ($self->{pid} != $$) { $self->{segment} = undef; $self->{pid} = $$ }
    for (1 .. 5) {
        $self->{segment} //= sprintf 'seg-%015d-%d-%s.jsonl', int(Time::HiRes::time() * 1000), $$,
            substr(WaferMon::Wire::new_id(), 0, 8);
        my $path = "$self->{dir}/$self->{segment}";
        sysopen my $fh, $path, O_WRONLY | O_APPEND | O_CREAT, 0600 or die "cannot open $path: $!\n";
        flock $fh, LOCK_EX or die "cannot lock $path: $!\n";
        my @at_path = stat $path;
        my @opened = stat $fh;
        if (!@at_path || $at_path[1] != $opened[1]) {    # claimed by the replayer: a new segment
            CORE::close($fh);
            $self->{segment} = undef;
            next;
        }
        my $size = $opened[7];
        my $wrote = syswrite $fh, $data;
        if (!defined $wrote || $wrote != length $data) {
            my $why = $! || 'short write';
            truncate $fh, $size;
            die "cannot write $path: $why\n";
        }
        CORE::close($fh) or die "cannot write $path: $!\n";
        return;
    }
    die "cannot append to the spool $self->{dir}: its segment kept being claimed\n";
}

# The replayer's next file, claimed: a half-replayed one first, else the oldest segment.
sub claim_next {
    my ($self) = @_;
    my ($claimed) = $self->_files(qr/\Aseg-.*\.jsonl\.claimed\z/);
    return "$self->{dir}/$claimed" if $claimed;
    for my $name ($self->_files(qr/\Aseg-.*\.jsonl\z/)) {
        my $path = "$self->{dir}/$name";
        sysopen my $fh, $path, O_RDWR or next;
        flock $fh, LOCK_EX or next;    # waits out a writer's append (one syswrite)
        my $ok = rename $path, "$path.claimed";
        CORE::close($fh);
        return "$path.claimed" if $ok;
    }
    return undef;
}

sub acked {
    my ($self, $claimed) = @_;
    open my $fh, '<', "$claimed.acked" or return 0;
    my $n = <$fh> // 0;
    return $n + 0;
}

sub ack {
    my ($self, $claimed, $offset) = @_;
    my $tmp = "$claimed.acked.tmp";
    sysopen my $fh, $tmp, O_WRONLY | O_CREAT | Fcntl::O_TRUNC(), 0600 or die "cannot write $tmp: $!\n";
    print {$fh} "$offset\n";
    CORE::close($fh) or die "cannot write $tmp: $!\n";
    rename $tmp, "$claimed.acked" or die "cannot rename $tmp: $!\n";
}

sub done {
    my ($self, $claimed) = @_;
    unlink "$claimed.acked";
    unlink $claimed;
}

# ---- small shared files: the replayer's state and the Retry-After barrier ---------------------

sub write_json {
    my ($self, $name, $data) = @_;
    $self->ensure_dir;
    my $path = "$self->{dir}/$name";
    my $tmp = "$path.$$.tmp";
    sysopen my $fh, $tmp, O_WRONLY | O_CREAT | Fcntl::O_TRUNC(), 0600 or return;
    print {$fh} WaferMon::Wire::encode_json($data);
    CORE::close($fh);
    rename $tmp, $path;
}

sub read_json {
    my ($self, $name) = @_;
    open my $fh, '<:raw', "$self->{dir}/$name" or return undef;
    my $text = do { local $/; <$fh> };
    return eval { WaferMon::Wire::decode_json($text) };
}

sub not_before { my $d = $_[0]->read_json('not-before'); $d ? $d->{time} : 0 }

sub set_not_before {
    my ($self, $time) = @_;
    $self->write_json('not-before', { time => $time }) if $time > $self->not_before;
}

# ---- the replayer's lock ----------------------------------------------------------------------

# Take replay.lock without waiting: the handle (keep it to hold the lock), or undef if held.
sub try_replay_lock {
    my ($self) = @_;
    $self->ensure_dir;
    my $path = "$self->{dir}/replay.lock";
    sysopen my $fh, $path, O_RDWR | O_CREAT, 0600 or die "cannot open $path: $!\n";
    return flock($fh, LOCK_EX | LOCK_NB) ? $fh : undef;
}

# (pid, owner) written by the replayer that holds the lock, if one does.
sub replayer {
    my ($self) = @_;
    my $lock = $self->try_replay_lock;
    return () if $lock;    # nobody holds it
    open my $fh, '<', "$self->{dir}/replay.lock" or return ();
    my ($pid, $owner) = split ' ', (<$fh> // '');
    return ($pid, $owner);
}

1;

__END__

=head1 NAME

WaferMon::Spool - the append-only disk spool (internal)

=head1 DESCRIPTION

Batches wait in C<{spool_dir}/perl/seg-*.jsonl> (folder 0700, files 0600), bounded by
C<spool_max_bytes>; the replayer claims a segment by renaming it under the writer's lock,
sends it from its acknowledged offset and deletes it. See the comment at the top of the
source for the layout.

=cut
