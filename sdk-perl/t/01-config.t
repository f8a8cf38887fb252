use strict;
use warnings;
use Test::More;
use lib 't/lib';
use WaferMonTest qw(tempdir clean_env);
use WaferMon::Config;

clean_env();
my $tmp = tempdir();

sub load_err {
    my (%args) = @_;
    my $s = eval { WaferMon::Config->load(%args) };
    return $s ? undef : $@;
}

subtest 'defaults are the shared ones (conformance/PROTOCOL.md)' => sub {
    local $ENV{XDG_CACHE_HOME} = "$tmp/cache";
    my $s = WaferMon::Config->load;
    is($s->{mode}, 'sidecar');
    is($s->{sidecar_url}, 'http://127.0.0.1:17000');
    is($s->{queue_size}, 10000);
    is($s->{batch_size}, 500);
    is($s->{flush_interval}, 0.2);
    is($s->{timeout}, 10);
    is($s->{max_retries}, 5);
    is($s->{retry_base_delay}, 0.2);
    is($s->{retry_max_delay}, 30);
    is($s->{replay_interval}, 1);
    is($s->{flush_timeout}, 10);
    is($s->{spool_dir}, "$tmp/cache/wafermon-sdk/spool");
    ok(!defined $s->{token});
};

subtest 'WAFERMON_* variables, then arguments' => sub {
    local $ENV{WAFERMON_SITE_ID} = 'fab-env.7';
    local $ENV{WAFERMON_FLUSH_INTERVAL} = '500ms';
    local $ENV{WAFERMON_SPOOL_MAX_BYTES} = '64MiB';
    local $ENV{WAFERMON_SIDECAR_URL} = 'http://127.0.0.1:9999/';
    local $ENV{WAFERMON_TOKEN} = 'tok';
    local $ENV{WAFERMON_TIMEOUT} = '5m';
    my $s = WaferMon::Config->load(batch_size => 7);
    is($s->{site_id}, 'fab-env.7');
    is($s->{flush_interval}, 0.5);
    is($s->{spool_max_bytes}, 64 * 2**20);
    is($s->{sidecar_url}, 'http://127.0.0.1:9999', 'trailing slash dropped');
    is($s->{token}, 'tok');
    is($s->{timeout}, 300);
    is($s->{batch_size}, 7);
    local $ENV{WAFERMON_BATCH_SIZE} = '9';
    is(WaferMon::Config->load(batch_size => 3)->{batch_size}, 3, 'an argument beats the variable');
};

subtest 'a bad value is an error naming the variable, all faults at once' => sub {
    local $ENV{WAFERMON_MODE} = 'sidcar';
    local $ENV{WAFERMON_QUEUE_SIZE} = '0';
    my $err = load_err();
    isa_ok($err, 'WaferMon::ConfigError');
    like("$err", qr/WAFERMON_MODE: must be one of sidecar, direct, got 'sidcar'/);
    like("$err", qr/WAFERMON_QUEUE_SIZE: must be at least 1, got 0/);
    is(scalar $err->problems, 2);
};

subtest 'each parser says what it expected' => sub {
    my %cases = (
        WAFERMON_FLUSH_INTERVAL   => ['5 fortnights', qr/expected a duration/],
        WAFERMON_TIMEOUT          => ['0', qr/must be more than 0/],
        WAFERMON_MAX_RETRIES      => ['many', qr/expected an integer/],
        WAFERMON_BATCH_SIZE       => ['-1', qr/must be at least 1/],
        WAFERMON_SIDECAR_URL      => ['127.0.0.1:17000', qr/expected an http/],
        WAFERMON_SITE_ID          => ['fab 1', qr/must be 1-64 letters/],
        WAFERMON_SPOOL_MAX_BYTES  => ['1KiB', qr/at least 1MiB/],
        WAFERMON_DIRECT_URL       => ['ftp://x/y', qr/expected file:/],
        WAFERMON_VERIFY_TLS       => ['maybe', qr/expected true or false/],
    );
    for my $var (sort keys %cases) {
        local $ENV{$var} = $cases{$var}[0];
        like(load_err() // '', qr/\A\Q$var\E: .*$cases{$var}[1]/s, $var);
    }
};

subtest 'direct mode needs WAFERMON_DIRECT_URL' => sub {
    like(load_err(mode => 'direct') // '', qr/WAFERMON_DIRECT_URL/);
    my $s = WaferMon::Config->load(mode => 'direct', direct_url => 'file:///srv/wafer%20mon/events');
    is($s->direct_root, '/srv/wafer mon/events', 'percent escapes decoded');
};

subtest 'settings file: YAML and TOML, under wafermon_sdk or at the top' => sub {
    open my $y, '>', "$tmp/sdk.yaml" or die;
    print {$y} "wafermon_sdk:\n  site_id: fab-yaml\n  batch_size: 11\n  flush_interval: 1s\n";
    close $y;
    open my $t, '>', "$tmp/sdk.toml" or die;
    print {$t} "site_id = \"fab-toml\"\nenable_retries = false\n";
    close $t;
    SKIP: {
        skip 'YAML::XS (libyaml-libyaml-perl) is not installed', 3 unless eval { require YAML::XS; 1 };
        local $ENV{WAFERMON_SDK_CONFIG} = "$tmp/sdk.yaml";
        my $s = WaferMon::Config->load;
        is($s->{site_id}, 'fab-yaml');
        is($s->{batch_size}, 11);
        local $ENV{WAFERMON_SITE_ID} = 'fab-env';
        is(WaferMon::Config->load->{site_id}, 'fab-env', 'the variable beats the file');
    }
    SKIP: {
        skip 'TOML::Tiny (libtoml-tiny-perl) is not installed', 2 unless eval { require TOML::Tiny; 1 };
        my $s = WaferMon::Config->load(config_file => "$tmp/sdk.toml");
        is($s->{site_id}, 'fab-toml');
        is($s->{enable_retries}, 0);
    }
    open my $bad, '>', "$tmp/bad.toml" or die;
    print {$bad} "queue_size = 0\nqeue_size = 3\n";
    close $bad;
    my $err = load_err(config_file => "$tmp/bad.toml") // '';
    like($err, qr{bad\.toml: qeue_size: unknown setting}, 'an unknown key is named with its file');
    like($err, qr{bad\.toml: queue_size: must be at least 1});
};

done_testing;
