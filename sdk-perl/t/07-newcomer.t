use strict;
use warnings;
use Test::More;
use JSON::PP ();
use lib 't/lib';
use WaferMonTest qw(tempdir clean_env read_events);
use WaferMon qw(monitored);

# Issue #21, the newcomer's path: subjobs inherit the lot's business key, and console mode
# prints each event as it is sent. Direct mode to files, as t/03-direct.t does.

clean_env();
my $tmp = tempdir();
my $n = 0;

# A client writing to a fresh folder of its own: (client, folder).
sub client {
    my $root = "$tmp/direct-" . ++$n;
    my $wm = WaferMon->new(mode => 'direct', direct_url => "file://$root", site_id => 'fab1',
        spool_dir => "$tmp/spool", flush_interval => '1h', @_);
    return ($wm, $root);
}

# What the block prints on STDERR (the SDK's own print, at the file descriptor).
sub stderr_of {
    my ($code) = @_;
    my $file = "$tmp/stderr-" . ++$n;
    open my $saved, '>&', \*STDERR or die "dup STDERR: $!";
    open STDERR, '>', $file or die "$file: $!";
    my $ok = eval { $code->(); 1 };
    my $err = $@;
    open STDERR, '>&', $saved or die "restore STDERR: $!";
    die $err unless $ok;
    open my $fh, '<', $file or die "$file: $!";
    return do { local $/; <$fh> };
}

sub printed_events {
    my ($text) = @_;
    return map { JSON::PP->new->utf8->decode($_) } map { /\Awafermon: send (.*)\z/ ? $1 : () } split /\n/, $text;
}

subtest 'a subjob started inside its parent\'s monitored block takes its business key; its own wins' => sub {
    my ($wm, $root) = client();
    my (%id, $lot_id);
    monitored {
        my ($lot) = @_;
        $lot_id = $lot->entity_id;
        my $w1 = $lot->subjob(sub_key => 'w1');
        $id{w1} = $w1->entity_id;
        $w1->finish;
        my $w2 = $wm->job(entity_type => 'subjob', parent => $lot->entity_id, sub_key => 'w2');    # by id
        $id{w2} = $w2->entity_id;
        $w2->finish;
        monitored {
            my ($w3) = @_;
            $id{w3} = $w3->entity_id;
            $id{step} = $w3->subjob(sub_key => 'etch')->entity_id;    # the wafer's: the lot's key too
        } client => $wm, parent => $lot, sub_key => 'w3';
        my $own = $lot->subjob(sub_key => 'w4', business_key => 'OWN');
        $id{own} = $own->entity_id;
        $own->finish;
    } client => $wm, app => 'etch', business_key => 'LOT-7';
    monitored {
        my ($keyless) = @_;
        $id{keyless} = $keyless->entity_id;
        $id{orphan} = $keyless->subjob(sub_key => 'w5')->entity_id;
    } client => $wm, app => 'etch';
    # Outside a monitored block (job guards) too: what the conformance scenarios
    # (job_with_subjobs_and_progress) expect of every SDK's plain job API.
    my $guard = $wm->job(app => 'etch', business_key => 'LOT-8');
    $id{guarded} = $guard->subjob(sub_key => 'w6')->entity_id;
    $guard->finish;
    ok($wm->close, 'delivered');
    my %key;
    for my $e (read_events($root)) {
        $key{ $e->{entity}{id} }{ $e->{kind} } = exists $e->{entity}{business_key} ? $e->{entity}{business_key} : '(none)';
    }
    for my $name (qw(w1 w2 w3 step)) {
        is_deeply($key{ $id{$name} }, { started => 'LOT-7', finished => 'LOT-7' }, "$name: the lot's key on every event");
    }
    is($key{$lot_id}{started}, 'LOT-7', 'the lot itself');
    is_deeply($key{ $id{own} }, { started => 'OWN', finished => 'OWN' }, 'an explicit key wins');
    is_deeply($key{ $id{orphan} }, { started => '(none)', finished => '(none)' }, 'a keyless parent gives none');
    is($key{ $id{keyless} }{started}, '(none)', '... and has none');
    is_deeply($key{ $id{guarded} }, { started => 'LOT-8', finished => 'LOT-8' }, 'a guard\'s subjob: the job\'s key');
};

subtest 'console mode (WAFERMON_CONSOLE=1) prints each event\'s JSON to STDERR as it is sent' => sub {
    local $ENV{WAFERMON_CONSOLE} = '1';
    my ($wm, $root) = client();
    is($wm->settings->{console}, 1, 'the setting');
    my $text = stderr_of(sub {
        my $job = $wm->job(app => 'etch', business_key => 'LOT-9');
        $job->tick(0.5);
        $job->finish;
        $wm->close or die "not delivered\n";
    });
    my @printed = printed_events($text);
    is_deeply([ map { $_->{kind} } @printed ], [qw(started progress finished)], 'one line per event, in order')
        or diag($text);
    my %stored = map { delete $_->{_path}; ($_->{event_id} => $_) } read_events($root);
    is(scalar keys %stored, 3, 'all stored');
    is_deeply($stored{ $_->{event_id} }, $_, "printed $_->{kind} is exactly what was stored") for @printed;
};

subtest 'console mode from the settings file and the constructor; off by default; checked' => sub {
    my $file = "$tmp/sdk.yaml";
    open my $fh, '>', $file or die "$file: $!";
    print {$fh} "wafermon_sdk:\n  console: true\n";
    close $fh;
    my $printed = stderr_of(sub {
        my ($wm) = client(config_file => $file);
        $wm->job(app => 'from-file')->finish;
        $wm->close;
    });
    is(scalar(printed_events($printed)), 2, 'console: true in the settings file') or diag($printed);
    $printed = stderr_of(sub {
        my ($wm) = client(console => 1);
        $wm->job(app => 'from-new')->finish;
        $wm->close;
    });
    is(scalar(printed_events($printed)), 2, 'console => 1 in new');
    my $quiet = stderr_of(sub {
        my ($wm) = client();
        $wm->job(app => 'quiet')->finish;
        $wm->close;
    });
    unlike($quiet, qr/wafermon: send/, 'nothing printed by default');
    local $ENV{WAFERMON_CONSOLE} = 'maybe';
    my $ok = eval { client(); 1 };
    ok(!$ok, 'a bad value dies');
    like("$@", qr/WAFERMON_CONSOLE: expected true or false, got 'maybe'/, 'naming the variable and the reason');
};

done_testing;
