#!/usr/bin/perl
# The Perl SDK's conformance driver: JSON lines over stdin/stdout (conformance/PROTOCOL.md).
#
# Every request is carried out through the public WaferMon API, as an application would:
# WaferMon->new from the environment alone, $wm->job / $job->subjob / tick / finish / fail,
# emit_event / emit_batch with events in wire form (hash refs), flush, close, stats. stdout
# carries responses only (STDOUT is kept for them; anything else that prints goes to stderr).
use strict;
use warnings;

use FindBin ();
use lib "$FindBin::Bin/../lib";
use JSON::PP ();
use Scalar::Util ();
use WaferMon ();

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;
open my $out, '>&', \*STDOUT or die "dup stdout: $!";
$out->autoflush(1);
open STDOUT, '>&', \*STDERR or die "stdout to stderr: $!";
STDERR->autoflush(1);

my ($client, %handles);

sub refused { die { kind => $_[0], message => $_[1] } }

sub need {
    my ($req, $name, $type) = @_;
    my $v = $req->{$name};
    my $ok = $type eq 'HASH' || $type eq 'ARRAY' ? ref $v eq $type : defined $v && !ref $v;
    refused('protocol', "$name: expected " . lc($type) . ', got ' . $JSON->encode($v)) unless $ok;
    return $v;
}

sub the_client { $client // refused('usage', 'no client: send a successful init first') }

sub handle {
    my ($name) = @_;
    return $handles{$name} // refused('usage', "unknown handle '$name'");
}

sub close_client {
    my ($timeout) = @_;
    my $c = $client;
    $client = undef;
    $c->close($timeout) if $c;
    %handles = ();
}

my %OPS = (
    hello => sub {
        return { language => 'perl', sdk => 'perl', sdk_version => $WaferMon::VERSION, protocol => 1 };
    },
    init => sub {
        my ($req) = @_;
        my $env = need($req, 'env', 'HASH');
        close_client(undef);
        delete $ENV{$_} for grep { /\AWAFERMON_/ } keys %ENV;
        $ENV{$_} = $env->{$_} for keys %$env;
        $client = eval { WaferMon->new };
        if (!$client) {
            my $err = $@;
            refused('config', $err->message) if ref $err && $err->isa('WaferMon::ConfigError');
            die $err;
        }
        return {};
    },
    start => sub {
        my ($req) = @_;
        my $c = the_client();
        my $name = need($req, 'handle', 'SCALAR');
        refused('usage', "handle '$name' is in use") if $handles{$name};
        my $app = need($req, 'app', 'HASH');
        my %opt = (app => $app, entity_type => $req->{entity_type} // 'job');
        $opt{$_} = $req->{$_} for grep { defined $req->{$_} } qw(business_key sub_key metadata);
        $opt{parent} = handle($req->{parent}) if defined $req->{parent};
        my $job = eval { $c->job(%opt) } // refused('usage', $@ =~ s/ at \S+ line \d+.*//sr);
        $handles{$name} = $job;
        return { entity_id => $job->entity_id };
    },
    progress => sub {
        my ($req) = @_;
        my $job = handle(need($req, 'handle', 'SCALAR'));
        eval { $job->tick(progress => $req->{progress}, metadata => $req->{metadata}); 1 }
            or refused('usage', $@ =~ s/ at \S+ line \d+.*//sr);
        return {};
    },
    finish => sub {
        my ($req) = @_;
        handle(need($req, 'handle', 'SCALAR'))->finish;
        return {};
    },
    fail => sub {
        my ($req) = @_;
        my $job = handle(need($req, 'handle', 'SCALAR'));
        my $error = need($req, 'error', 'HASH');
        my $type = $error->{type};
        refused('protocol', 'error.type: expected a non-empty string') unless defined $type && length $type;
        # Thrown and caught, as in an application; the type is named as the runner asks.
        eval { die(($error->{message} // '') . "\n") };
        $job->fail($@, type => $type);
        return {};
    },
    emit_event => sub {
        my ($req) = @_;
        my $event = need($req, 'event', 'HASH');
        return { queued => the_client()->emit_event($event) ? JSON::PP::true : JSON::PP::false };
    },
    emit_batch => sub {
        my ($req) = @_;
        my $events = need($req, 'events', 'ARRAY');
        return { queued => the_client()->emit_batch($events) + 0 };
    },
    flush => sub {
        my ($req) = @_;
        return { delivered => the_client()->flush($req->{timeout}) ? JSON::PP::true : JSON::PP::false };
    },
    close => sub {
        my ($req) = @_;
        close_client($req->{timeout});
        return {};
    },
    stats => sub { return { stats => the_client()->stats } },
    quit => sub { close_client(undef); return {} },
);

while (my $line = <STDIN>) {
    next unless $line =~ /\S/;
    my $req = eval { $JSON->decode($line) };
    my %res;
    if (ref $req ne 'HASH') {
        %res = (seq => undef, ok => JSON::PP::false, error => { kind => 'protocol', message => 'expected a JSON object' });
    } else {
        my $op = $req->{op} // '';
        my $seq = $req->{seq};
        if (!$OPS{$op}) {
            %res = (seq => $seq, ok => JSON::PP::false, error => { kind => 'protocol', message => "unknown op '$op'" });
        } else {
            my $answer = eval { $OPS{$op}->($req) };
            if ($answer) {
                %res = (seq => $seq, ok => JSON::PP::true, %$answer);
            } else {
                my $err = $@;
                my $e = ref $err eq 'HASH' ? $err : { kind => 'internal', message => "$err" };
                %res = (seq => $seq, ok => JSON::PP::false, error => $e);
            }
        }
        print {$out} $JSON->encode(\%res), "\n";
        last if $op eq 'quit';
        next;
    }
    print {$out} $JSON->encode(\%res), "\n";
}
close_client(undef);
