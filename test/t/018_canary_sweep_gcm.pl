
# The canary sweep of 001_canary_sweep.pl, with node A's temporary relations
# and spill files in AES-256-GCM: no marker anywhere on A, every spill file
# and temporary relation in format v2, the same results as without the
# extension, and no integrity failure in a run where nothing tampers.

use strict;
use warnings;

use FindBin;
# Loaded here, at compile time, so that their INIT blocks run; 001 is
# compiled only when it is run below.
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our $canary_cipher = 'aes-256-gcm';
do "$FindBin::RealBin/001_canary_sweep.pl" or die($@ || "001_canary_sweep.pl: $!");
