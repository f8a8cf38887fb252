use strict;
use warnings;
use Test::More;
use POSIX ();
use WaferMon::Wire;

my $UUID4 = qr/\A[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\z/;

subtest 'event ids: lower-case UUID v4, unique, fresh in a forked child' => sub {
    my %seen;
    for (1 .. 2000) { my $id = WaferMon::Wire::new_id(); like($id, $UUID4) unless $_ % 500; $seen{$id}++ }
    is(scalar keys %seen, 2000, 'no id twice');
    pipe my $r, my $w or die;
    my $pid = fork // die;
    if (!$pid) { close $r; print {$w} WaferMon::Wire::new_id(), "\n"; close $w; POSIX::_exit(0) }
    close $w;
    chomp(my $child = <$r>);
    waitpid $pid, 0;
    my $parent = WaferMon::Wire::new_id();
    like($child, $UUID4);
    isnt($child, $parent, 'the child does not reuse the parent\'s random pool');
    ok(!$seen{$child}, 'nor any earlier id');
};

subtest 'times' => sub {
    is(WaferMon::Wire::rfc3339(0), '1970-01-01T00:00:00.000000Z');
    is(WaferMon::Wire::rfc3339(1764316801.5), '2025-11-28T08:00:01.500000Z');
    is(WaferMon::Wire::rfc3339(1.9999996), '1970-01-01T00:00:02.000000Z', 'rounding carries');
    is(WaferMon::Wire::utc_date('2026-11-28T08:00:01.5Z'), '2026-11-28');
    is(WaferMon::Wire::utc_date('2026-11-28T23:30:00-02:00'), '2026-11-29', 'offset moves the UTC date');
    is(WaferMon::Wire::utc_date('2026-11-28T01:00:00+02:00'), '2026-11-27');
    ok(!defined WaferMon::Wire::utc_date('yesterday'));
};

subtest 'metadata cap at its edge (16384 bytes of compact JSON)' => sub {
    my $pad = 16384 - length('{"k":""}');
    my ($json, $cut) = WaferMon::Wire::metadata_json({ k => 'x' x $pad });
    is(length $json, 16384);
    ok(!$cut, 'exactly at the cap: sent as it is');
    ($json, $cut) = WaferMon::Wire::metadata_json({ k => 'x' x ($pad + 1) });
    ok($cut, 'one byte more: replaced');
    like($json, qr/"wafermon_sdk_truncated":"metadata of 16385 bytes/);
    ($json) = WaferMon::Wire::metadata_json({ k => "\x{e9}" x 8000 });
    ok(length($json) < 16384, 'multi-byte text counts its UTF-8 bytes') or diag length $json;
    ($json, $cut) = WaferMon::Wire::metadata_json({ k => "\x{e9}" x 8200 });
    ok($cut, '8200 two-byte characters are above the cap');
};

subtest 'wire-form events: checked fields named' => sub {
    my %ok = (schema_version => 1, event_id => '1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f', kind => 'started',
              time => '2026-11-28T08:00:00Z', site_id => 'fab1', app => { name => 'x' },
              entity => { type => 'job', id => 'j1' });
    like(WaferMon::Wire::event_line({%ok}), qr/\A\{.*\}\n\z/s);
    like(WaferMon::Wire::event_line('{"schema_version":1,"event_id":"e","kind":"progress","time":"2026-11-28T08:00:00Z","site_id":"s","app":{"name":"a"},"entity":{"type":"job","id":"j"}}'),
        qr/"kind":"progress"/, 'JSON text too');
    like(eval { WaferMon::Wire::event_line({ %ok, kind => 'strated' }) } // $@, qr/\Akind: must be one of/);
    like(eval { WaferMon::Wire::event_line({ %ok, time => 'now' }) } // $@, qr/\Atime: /);
    like(eval { my %e = %ok; delete $e{site_id}; WaferMon::Wire::event_line(\%e) } // $@, qr/\Asite_id: missing/);
    like(eval { WaferMon::Wire::event_line([1]) } // $@, qr/expected a hash ref/);
};

subtest 'error objects' => sub {
    my $e = WaferMon::Wire::error_info("boom at /x/y.pl line 3.\n");
    is_deeply($e, { type => 'die', message => 'boom', stack => 'at /x/y.pl line 3.' });
    $e = WaferMon::Wire::error_info(bless({}, 'Fab::LotAborted'));
    is($e->{type}, 'Fab::LotAborted', 'an exception object names its class');
    $e = WaferMon::Wire::error_info('x' x 9000, 'fab.LotAbortedError');
    is($e->{type}, 'fab.LotAbortedError');
    is(length $e->{message}, 8192, 'message cut to the schema limit');
};

done_testing;
