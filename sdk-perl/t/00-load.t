use strict;
use warnings;
use Test::More;

for my $module (qw(WaferMon WaferMon::Config WaferMon::Wire WaferMon::Job WaferMon::Spool
                   WaferMon::Replayer WaferMon::Sink::Sidecar WaferMon::Sink::Direct)) {
    use_ok($module);
}
is($WaferMon::VERSION, $WaferMon::Wire::VERSION, 'one version for the distribution and source.sdk_version');
diag("JSON backend: " . ref $WaferMon::Wire::JSON) if $WaferMon::Wire::JSON;
done_testing;
