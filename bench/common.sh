# Sourced first by every bench/*.sh: $top is the source tree's top and the
# working directory, and scripts/common.sh gives PostgreSQL's binaries and
# as_test_user.
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
# shellcheck source=scripts/common.sh
source scripts/common.sh
