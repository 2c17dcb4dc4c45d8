#!/bin/sh
# consensus on azure: see deployments/lib/deploy.sh and mem-deploy(7).
exec sh "$(dirname "$0")/../../lib/deploy.sh" consensus azure "$@"
