#!/bin/sh
# The Erlang VM of the bench's ejabberd node, with its open-file soft limit
# raised to the hard one. ejabberdctl starts the VM through `su ejabberd`,
# whose pam_limits sets the soft limit back to init's (1,024 here): too few
# for the fan-out's 1,000 members and the idle scenario's 10,000
# connections. ejabberdctl.cfg points ERL here.
ulimit -n "$(ulimit -Hn)"
exec /usr/bin/erl "$@"
