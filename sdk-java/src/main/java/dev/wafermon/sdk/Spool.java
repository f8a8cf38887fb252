package dev.wafermon.sdk;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Batches that could not be delivered wait here, one file each, as the C SDK's spool does:
 * {@code {spool_dir}/{sink}/{unix_ns}-{pid}-{seq}-{random}.ndjson}, written under a hidden
 * temporary name, forced to disk, renamed into place and the folder forced: a file holds a
 * whole batch or does not exist. Names sort by creation time, so replay goes oldest first.
 * Any client on the same folder replays any file (also those a killed process left); the
 * replaying client holds a file lock, and deletes the file only after the destination took
 * every line. Folders are 0700 and files 0600 (events may hold business data). Bounded:
 * above {@code spool_max_bytes} or older than {@code spool_max_age}, the oldest files are
 * deleted, and the events lost that way are counted and logged.
 */
final class Spool {
    private static final String SUFFIX = ".ndjson";
    private static final Set<PosixFilePermission> DIR_MODE = PosixFilePermissions.fromString("rwx------");
    private static final Set<PosixFilePermission> FILE_MODE = PosixFilePermissions.fromString("rw-------");
    private static final AtomicLong SEQ = new AtomicLong();
    private static final System.Logger LOG = System.getLogger("dev.wafermon.sdk");

    final Path dir;
    private final long maxBytes;
    private final Duration maxAge;

    Spool(Path root, String sink, long maxBytes, Duration maxAge) throws IOException {
        this.dir = root.resolve(sink);
        this.maxBytes = maxBytes;
        this.maxAge = maxAge;
        makeDirs(dir);
    }

    private static void makeDirs(Path dir) throws IOException {
        Path abs = dir.toAbsolutePath();
        List<Path> missing = new ArrayList<>();
        for (Path p = abs; p != null && !Files.isDirectory(p); p = p.getParent()) {
            missing.add(0, p);
        }
        for (Path p : missing) {
            try {
                Files.createDirectory(p, PosixFilePermissions.asFileAttribute(DIR_MODE));
            } catch (FileAlreadyExistsException e) {
                if (!Files.isDirectory(p)) {
                    throw e;
                }
            }
            Files.setPosixFilePermissions(p, DIR_MODE); // the umask may have taken bits away
        }
    }

    /** Writes the lines as one spool file; returns the number of events dropped by the bounds. */
    long write(List<Wire.Line> lines) throws IOException {
        long nanos = nowNanos();
        String name = String.format("%020d-%d-%d-%s%s", nanos, ProcessHandle.current().pid(),
                SEQ.incrementAndGet(), Ids.uuid4().substring(0, 8), SUFFIX);
        Path tmp = dir.resolve("." + name + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, EnumSet.of(StandardOpenOption.CREATE_NEW,
                StandardOpenOption.WRITE), PosixFilePermissions.asFileAttribute(FILE_MODE))) {
            ByteBuffer[] buffers = new ByteBuffer[lines.size()];
            for (int i = 0; i < buffers.length; i++) {
                buffers[i] = ByteBuffer.wrap(lines.get(i).bytes);
            }
            long left = 0;
            for (ByteBuffer b : buffers) {
                left += b.remaining();
            }
            while (left > 0) {
                left -= ch.write(buffers);
            }
            ch.force(true);
        } catch (IOException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        try {
            Files.move(tmp, dir.resolve(name), StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, dir.resolve(name));
        }
        forceDir();
        return enforceBounds();
    }

    private void forceDir() {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException e) {
            // Not every file system lets a folder be opened; the rename itself is done.
        }
    }

    private static long nowNanos() {
        Instant now = Instant.now();
        return now.getEpochSecond() * 1_000_000_000L + now.getNano();
    }

    /** The spool files, oldest first. */
    List<Path> files() {
        List<Path> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "[0-9]*" + SUFFIX)) {
            for (Path p : ds) {
                out.add(p);
            }
        } catch (IOException e) {
            return out;
        }
        out.sort(null);
        return out;
    }

    boolean isEmpty() {
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "[0-9]*" + SUFFIX)) {
            return !ds.iterator().hasNext();
        } catch (IOException e) {
            return true;
        }
    }

    /** What replaying one file did. */
    enum Outcome { DELIVERED, UNAVAILABLE, BUSY }

    /** Sends one file's lines with {@code send}; deletes it when that says DELIVERED. */
    Outcome replay(Path file, Sender.Attempt send) throws InterruptedException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            FileLock lock;
            try {
                lock = ch.tryLock();
            } catch (OverlappingFileLockException e) {
                return Outcome.BUSY;
            }
            if (lock == null) {
                return Outcome.BUSY; // another client replays it
            }
            try {
                if (!Files.exists(file)) {
                    return Outcome.BUSY; // replayed and deleted while we waited for the lock
                }
                byte[] data = Files.readAllBytes(file);
                List<Wire.Line> lines = split(data);
                Outcome outcome = lines.isEmpty() ? Outcome.DELIVERED : send.attempt(lines);
                if (outcome == Outcome.DELIVERED) {
                    Files.deleteIfExists(file);
                }
                return outcome;
            } finally {
                lock.release();
            }
        } catch (NoSuchFileException e) {
            return Outcome.BUSY;
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "wafermon: cannot replay spool file " + file + ": " + e);
            return Outcome.UNAVAILABLE;
        }
    }

    static List<Wire.Line> split(byte[] data) {
        List<Wire.Line> lines = new ArrayList<>();
        int start = 0;
        for (int i = 0; i <= data.length; i++) {
            if (i == data.length || data[i] == '\n') {
                if (i > start) {
                    byte[] line = new byte[i - start + 1];
                    System.arraycopy(data, start, line, 0, i - start);
                    line[i - start] = '\n';
                    lines.add(new Wire.Line(line, null, null));
                }
                start = i + 1;
            }
        }
        return lines;
    }

    /** Deletes the oldest files above the size bound or past the age bound; events lost. */
    long enforceBounds() {
        List<Path> files = files();
        long total = 0;
        long[] sizes = new long[files.size()];
        for (int i = 0; i < sizes.length; i++) {
            try {
                sizes[i] = Files.size(files.get(i));
            } catch (IOException e) {
                sizes[i] = 0;
            }
            total += sizes[i];
        }
        long oldest = nowNanos() - maxAge.toNanos();
        long lost = 0;
        for (int i = 0; i < sizes.length - 1 || (i < sizes.length && total > maxBytes); i++) {
            Path f = files.get(i);
            boolean old = nanosOf(f) < oldest;
            if (!old && total <= maxBytes) {
                break;
            }
            try {
                long events = Files.lines(f).count();
                Files.deleteIfExists(f);
                lost += events;
                total -= sizes[i];
                LOG.log(System.Logger.Level.WARNING, "wafermon: spool " + dir + " dropped " + f.getFileName()
                        + " (" + events + " events): " + (old ? "older than spool_max_age " + maxAge
                        : "above spool_max_bytes " + maxBytes));
            } catch (IOException e) {
                // A file another client just replayed; nothing lost here.
            }
        }
        return lost;
    }

    private static long nanosOf(Path f) {
        String n = f.getFileName().toString();
        int dash = n.indexOf('-');
        try {
            return Long.parseLong(n.substring(0, dash));
        } catch (RuntimeException e) {
            return Long.MAX_VALUE;
        }
    }
}
