use strict;
use warnings;
use Test::More;
use File::Find ();
use Pod::Checker ();

# Every module documents itself, without POD errors (Pod::Checker is core Perl).
my @modules;
File::Find::find({ no_chdir => 1, wanted => sub { push @modules, $_ if /\.pm\z/ } }, 'lib');
for my $file (sort @modules) {
    my $checker = Pod::Checker->new(-warnings => 1);
    open my $null, '>', \my $log;
    $checker->parse_from_file($file, $null);
    ok($checker->num_errors == 0 && $checker->name, "$file has valid POD with a NAME")
        or diag $log;
}
done_testing;
