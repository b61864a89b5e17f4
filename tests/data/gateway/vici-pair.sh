#!/bin/bash
# vici-pair.sh - two real strongSwan charons with an established tunnel, for the vici source
# test (tests/vici_charon.rs). The topology and settings are capture.sh's ikev2-success
# scenario: netns tw-vici-aws (192.0.2.10, inside 169.254.10.1/30) and tw-vici-cgw
# (198.51.100.20, inside 169.254.10.2/30) joined by a veth pair; IKEv2 PSK; userspace ESP
# (kernel-libipsec, as this kernel has no ESP); the cgw side initiates.
#
#   vici-pair.sh up DIR     start both, initiate, ping 5 times through the tunnel; prints
#                           the cgw charon's VICI socket (DIR/cgw/charon.vici)
#   vici-pair.sh ping DIR N ping N more times through the tunnel
#   vici-pair.sh down DIR   stop both charons, delete the namespaces
#
# Needs root, iproute2, iputils-ping, strongswan-charon, strongswan-swanctl and
# libcharon-extra-plugins (.ci/run installs them). Every wait is bounded.

set -u
CMD=${1:?up|ping|down}
DIR=${2:?work directory}
CHARON=/usr/lib/ipsec/charon
NS_AWS=tw-vici-aws
NS_CGW=tw-vici-cgw
AWS_OUT=192.0.2.10
CGW_OUT=198.51.100.20
AWS_IN=169.254.10.1
CGW_IN=169.254.10.2
PSK='tunnelwatch-test-psk-0123456789'

log() { echo "[vici-pair $(date +%T)] $*" >&2; }

down() {
    local ns p
    for ns in $NS_AWS $NS_CGW; do
        for p in $(ip netns pids $ns 2>/dev/null); do kill -TERM "$p" 2>/dev/null; done
    done
    sleep 0.5
    for ns in $NS_AWS $NS_CGW; do
        for p in $(ip netns pids $ns 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del $ns 2>/dev/null
    done
    return 0
}

wait_path() { # PATH TIMEOUT_S
    local i
    for i in $(seq 1 $(($2 * 10))); do [ -e "$1" ] && return 0; sleep 0.1; done
    log "timeout waiting for $1"; return 1
}

sw() { # side swanctl-args...
    local side=$1; shift
    STRONGSWAN_CONF=$DIR/$side/strongswan.conf timeout 30 swanctl "$@" --uri "unix://$DIR/$side/charon.vici"
}

conf() { # side me peer conn lts rts
    local side=$1 me=$2 peer=$3 conn=$4 lts=$5 rts=$6 d=$DIR/$1
    mkdir -p "$d"
    cat >"$d/strongswan.conf" <<EOF
charon {
    load_modular = no
    load = random nonce aes sha1 sha2 md5 hmac xcbc gmp pem pkcs1 pubkey x509 revocation constraints kdf kernel-libipsec kernel-netlink socket-default vici
    retransmit_tries = 2
    retransmit_timeout = 1
    plugins {
        vici {
            socket = unix://$d/charon.vici
        }
    }
    filelog {
        tw {
            path = $d/charon.log
            time_format = %b %e %T
            ike_name = yes
            default = 1
        }
    }
}
swanctl {
    load = random nonce aes sha1 sha2 md5 hmac gmp pem pkcs1 pubkey x509
}
EOF
    cat >"$d/swanctl.conf" <<EOF
connections {
    $conn {
        version = 2
        local_addrs = $me
        remote_addrs = $peer
        proposals = aes256-sha256-modp2048
        local {
            auth = psk
            id = $me
        }
        remote {
            auth = psk
            id = $peer
        }
        children {
            $conn-esp {
                local_ts = $lts
                remote_ts = $rts
                esp_proposals = aes256-sha256-modp2048
                start_action = none
            }
        }
    }
}
secrets {
    ike-$conn {
        id-1 = $me
        id-2 = $peer
        secret = "$PSK"
    }
}
EOF
}

start() { # side ns
    local side=$1 ns=$2 d=$DIR/$1
    STRONGSWAN_CONF=$d/strongswan.conf ip netns exec "$ns" unshare -m --propagation private \
        bash -c "mount -t tmpfs -o mode=755 tmpfs /run &&
                 mount -t tmpfs -o mode=755 tmpfs /dev &&
                 mknod -m 666 /dev/null c 1 3 && mknod -m 666 /dev/zero c 1 5 &&
                 mknod -m 666 /dev/random c 1 8 && mknod -m 666 /dev/urandom c 1 9 &&
                 mkdir /dev/net && mknod -m 666 /dev/net/tun c 10 200 &&
                 exec $CHARON" </dev/null >"$d/charon.stderr" 2>&1 &
    wait_path "$d/charon.vici" 10 || { cat "$d/charon.stderr" >&2; return 1; }
    sleep 0.3
    sw "$side" --load-all --file "$d/swanctl.conf" >"$d/load.txt" 2>&1 \
        || { log "swanctl --load-all failed ($side)"; cat "$d/load.txt" >&2; return 1; }
}

ping_through() { # count
    ip netns exec $NS_CGW ping -c "$1" -i 0.2 -W 1 -I $CGW_IN $AWS_IN >"$DIR/ping.txt" 2>&1 \
        || { log "ping through the tunnel failed: $(tail -2 "$DIR/ping.txt")"; return 1; }
}

up() {
    down
    mkdir -p "$DIR"
    ip netns add $NS_AWS && ip netns add $NS_CGW || return 1
    ip link add veth-vaws netns $NS_AWS type veth peer name veth-vcgw netns $NS_CGW || return 1
    ip -n $NS_AWS link set lo up
    ip -n $NS_CGW link set lo up
    ip -n $NS_AWS addr add $AWS_OUT/24 dev veth-vaws
    ip -n $NS_AWS addr add $AWS_IN/30 dev veth-vaws
    ip -n $NS_CGW addr add $CGW_OUT/24 dev veth-vcgw
    ip -n $NS_CGW addr add $CGW_IN/30 dev veth-vcgw
    ip -n $NS_AWS link set veth-vaws up
    ip -n $NS_CGW link set veth-vcgw up
    ip -n $NS_AWS route add 198.51.100.0/24 dev veth-vaws
    ip -n $NS_CGW route add 192.0.2.0/24 dev veth-vcgw
    conf aws $AWS_OUT $CGW_OUT aws-tunnel1 $AWS_IN/32 $CGW_IN/32
    conf cgw $CGW_OUT $AWS_OUT vpn-tunnel1 $CGW_IN/32 $AWS_IN/32
    start aws $NS_AWS && start cgw $NS_CGW || return 1
    sw cgw --initiate --child vpn-tunnel1-esp --timeout 15 >"$DIR/initiate.txt" 2>&1 \
        || { log "initiate failed"; cat "$DIR/initiate.txt" >&2; return 1; }
    sleep 1
    ping_through 5 || return 1
    echo "$DIR/cgw/charon.vici"
}

case "$CMD" in
    up) up || { down; exit 1; } ;;
    ping) ping_through "${3:-5}" ;;
    down) down ;;
    raw) sw cgw --list-sas --raw ;;
    *) echo "usage: $0 up|ping|down|raw DIR" >&2; exit 2 ;;
esac
