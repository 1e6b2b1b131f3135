#!/bin/sh
# Tether agent installer (stub: being written). Served by the hub at GET /install.sh with the two
# placeholders below replaced.
TETHER_HUB_DEFAULT='@@TETHER_HUB@@'
TETHER_VERSION_DEFAULT='@@TETHER_VERSION@@'
echo "install.sh: not written yet ($TETHER_HUB_DEFAULT $TETHER_VERSION_DEFAULT)" >&2
exit 1
