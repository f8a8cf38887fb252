#!/usr/bin/perl
# The Perl SDK's benchmark program, run by bench/sdk_perl_bench.py against a real sidecar
# (WAFERMON_SIDECAR_URL etc. in the environment). Prints one JSON object on stdout.
#
#   caller cost: ns per event of $job->tick and of emit_event (wall and CPU time; a batch is
#     one append to the spool, the replayer process sends it), as ratios to the baseline
#     measured in the same run: appending the same JSON line to a local file (syswrite on an
#     O_APPEND file, and print through PerlIO's buffer).
#   throughput: events/s from the first tick until close returned true, i.e. until the
#     sidecar acknowledged every event.
use strict;
use warnings;
use FindBin ();
use lib "$FindBin::Bin/../lib";
use File::Temp ();
use Getopt::Long ();
use JSON::PP ();
use Time::HiRes qw(time);
use WaferMon ();

Getopt::Long::GetOptions(\my %opt, 'calls=i', 'rounds=i', 'events=i') or die;
my ($calls, $rounds, $events) = ($opt{calls} // 20_000, $opt{rounds} // 5, $opt{events} // 50_000);
my $meta = { tool => 'etch-07', recipe => 'POLY-ETCH-3', customer => 'ACME' };

sub median { my @s = sort { $a <=> $b } @_; $s[$#s / 2] }

# Runs $code $calls times; records ns per call in wall time and in this process's CPU time
# (user + system): on a shared, loaded machine the CPU figure is the steadier one.
my (%ns, %cpu);
sub measure {
    my ($name, $code) = @_;
    my @c0 = times;
    my $t0 = time;
    $code->();
    my $wall = time - $t0;
    my @c1 = times;
    push @{ $ns{$name} }, $wall / $calls * 1e9;
    push @{ $cpu{$name} }, ($c1[0] - $c0[0] + $c1[1] - $c0[1]) / $calls * 1e9;
}

# A representative line: what the SDK itself sends for one progress tick.
my $sample;
{
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    my $wm = WaferMon->new(mode => 'direct', direct_url => "file://$dir", site_id => 'fab1', spool_dir => "$dir/spool");
    my $job = $wm->job(app => { name => 'wafer-process', version => '2.1.0' }, business_key => 'LOT-12345', metadata => $meta);
    $job->tick(0.5);
    $job->finish;
    $wm->close;
    ($sample) = grep { /"progress"/ } do { open my $fh, '<', (glob "$dir/fab1/*/events.jsonl")[0] or die; <$fh> };
}

for my $round (1 .. $rounds) {
    my $tmp = File::Temp->new;
    open my $raw, '>>:raw', $tmp->filename or die;
    measure(file_syswrite => sub { syswrite $raw, $sample for 1 .. $calls });
    close $raw;
    open my $buf, '>>:raw', $tmp->filename or die;
    measure(file_print => sub { print {$buf} $sample for 1 .. $calls; close $buf });

    my $wm = WaferMon->new;
    my $job = $wm->job(app => { name => 'wafer-process', version => '2.1.0' }, business_key => 'LOT-12345', metadata => $meta);
    measure(tick => sub { $job->tick(($_ % 100) / 100) for 1 .. $calls });
    $job->finish;
    my @wire = map {
        my $e = JSON::PP::decode_json($sample);
        $e->{event_id} = WaferMon::Wire::new_id();
        $e;
    } 1 .. 1000;
    measure(emit_event => sub { $wm->emit_event($wire[$_ % 1000]) for 1 .. $calls });
    $wm->close(300) or die "bench: not delivered: " . ($wm->stats->{last_error} // '?');
}
my %median = map { $_ => median(@{ $ns{$_} }) } keys %ns;
my %median_cpu = map { $_ => median(@{ $cpu{$_} }) } keys %cpu;

my $wm = WaferMon->new;
my $t0 = time;
my $job = $wm->job(app => { name => 'wafer-process', version => '2.1.0' }, business_key => 'LOT-THROUGHPUT', metadata => $meta);
$job->tick(($_ % 100) / 100) for 1 .. $events - 2;
$job->finish;
$wm->close(120) or die "bench: throughput run not delivered: " . ($wm->stats->{last_error} // '?');
my $rate = $events / (time - $t0);

print JSON::PP->new->canonical->encode({
    caller_cost => {
        tick_ns                       => sprintf('%.0f', $median{tick}) + 0,
        emit_event_ns                 => sprintf('%.0f', $median{emit_event}) + 0,
        baseline_file_syswrite_ns     => sprintf('%.0f', $median{file_syswrite}) + 0,
        baseline_file_print_ns        => sprintf('%.0f', $median{file_print}) + 0,
        tick_vs_file_syswrite         => sprintf('%.2f', $median{tick} / $median{file_syswrite}) + 0,
        tick_vs_file_print            => sprintf('%.2f', $median{tick} / $median{file_print}) + 0,
        emit_event_vs_file_syswrite   => sprintf('%.2f', $median{emit_event} / $median{file_syswrite}) + 0,
        tick_cpu_ns                   => sprintf('%.0f', $median_cpu{tick}) + 0,
        emit_event_cpu_ns             => sprintf('%.0f', $median_cpu{emit_event}) + 0,
        baseline_file_syswrite_cpu_ns => sprintf('%.0f', $median_cpu{file_syswrite}) + 0,
        tick_vs_file_syswrite_cpu     => sprintf('%.2f', $median_cpu{tick} / $median_cpu{file_syswrite}) + 0,
        emit_event_vs_file_syswrite_cpu => sprintf('%.2f', $median_cpu{emit_event} / $median_cpu{file_syswrite}) + 0,
        line_bytes                    => length $sample,
        calls                         => $calls,
        rounds                        => $rounds,
        json                          => ref $WaferMon::Wire::JSON,
        batch_size                    => $wm->settings->{batch_size},
    },
    throughput => {
        events              => $events,
        events_per_s        => sprintf('%.0f', $rate) + 0,
        vs_file_syswrite_rate => sprintf('%.3f', $rate / (1e9 / $median{file_syswrite})) + 0,
        note                => 'first tick until close returned true (every event acknowledged by a real sidecar)',
    },
}), "\n";
