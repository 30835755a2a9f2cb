#!/bin/sh
# Start sshd when the test gave us an authorized key (host keys made here, per node), then
# run dockerd with the arguments given (hosts, TLS files, --storage-driver=vfs).
set -e
if [ -s /root/.ssh/authorized_keys ]; then
    chmod 600 /root/.ssh/authorized_keys
    ssh-keygen -A >/dev/null
    /usr/sbin/sshd
fi
# A node container that was stopped and started again (the "lost node" test) keeps the pid
# files of the engine that was killed: dockerd refuses to start over them.
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
exec dockerd "$@"
