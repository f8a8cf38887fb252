#!/usr/bin/perl
# A lot of N wafers as a monitored job with one subjob per wafer (docs/sdk-perl.md).
#
#   WAFERMON_SITE_ID=fab1 perl -Ilib examples/wafer_lot.pl 12                  # to the sidecar
#   WAFERMON_MODE=direct WAFERMON_DIRECT_URL=file:///tmp/events \
#   WAFERMON_SITE_ID=fab1 perl -Ilib examples/wafer_lot.pl 12                  # to files
use strict;
use warnings;
use WaferMon qw(monitored);

my $wafers = shift // 12;
my $wm = WaferMon->new(metadata => { tool => 'etch-7' });    # WAFERMON_* do the rest

monitored {
    my ($lot) = @_;
    for my $n (1 .. $wafers) {
        my $wafer = $lot->subjob(sub_key => "wafer-$n");
        my $sum = 0;
        $sum += sqrt $_ for 1 .. 20_000;          # the "work"
        $wafer->tick(0.5, { chamber => $n % 2 ? 'A' : 'B' });
        $wafer->finish;
    }
} client => $wm, app => { name => 'wafer-lot', version => '1.0' }, business_key => "lot-$$";

$wm->close or die "wafermon: not every event was delivered: " . ($wm->stats->{last_error} // '?') . "\n";
print "lot of $wafers wafers reported\n";
