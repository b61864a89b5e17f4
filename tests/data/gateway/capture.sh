#!/bin/bash
# capture.sh - capture REAL gateway daemon log lines (strongSwan charon, FRR bgpd,
# BIRD 2) for tunnelwatch parser table tests.
#
# Run as root:   sudo ./capture.sh [all|strongswan|bgp] [scenario ...]
#   strongswan scenarios: ikev2_success psk_mismatch ike_prop esp_prop invalid_ke
#                         ts dpd sad_fail v1_success v1_psk v1_prop verbose nat
#   bgp scenarios:        adminshut holdtimer badas_frr badas_bird maxpfx_frr
#                         maxpfx_bird
# Needs: strongswan-charon strongswan-swanctl libcharon-extra-plugins frr bird2
#        iptables iputils-ping python3
#
# Topology (two network namespaces joined by one veth pair):
#
#   tw-aws  veth-aws  192.0.2.10/24   "AWS tunnel outside IP"  + 169.254.10.1/30 (inside)
#   tw-cgw  veth-cgw  198.51.100.20/24 "customer gateway IP"   + 169.254.10.2/30 (inside)
#   on-link routes: tw-aws 198.51.100.0/24 dev veth-aws, tw-cgw 192.0.2.0/24 dev veth-cgw
#
# strongSwan: one charon per namespace, each in its own mount namespace
#   (unshare -m) with a private tmpfs /run (pid file) and a private tmpfs /dev
#   whose /dev/log is a symlink to a unix datagram socket served by a small
#   python receiver on the host, which writes every raw syslog(3) datagram
#   (with its <PRI>) as one line.  STRONGSWAN_CONF selects a per-instance
#   strongswan.conf; vici sockets live under $WORK.
#   This kernel has no ESP (CONFIG_INET_ESP unset), so scenarios that need an
#   installed CHILD_SA load kernel-libipsec (userspace ESP over a TUN device;
#   needs package libcharon-extra-plugins), the others only kernel-netlink.
#   Scenario ikev2-nat-traversal adds a third namespace tw-nat between them:
#   tw-cgw 10.0.0.2/24 -> tw-nat 10.0.0.1/24 | 198.51.100.20/24 (SNAT, UDP
#   source ports 61000-61100) -> tw-aws 192.0.2.10.
# BGP: FRR (zebra + bgpd, -N pathspace) in tw-cgw as the customer gateway
#   (AS 65000, 169.254.10.2), BIRD 2 in tw-aws playing AWS (AS 64512,
#   169.254.10.1). The BGP session runs in clear over the inside /30 on the veth.
#
# Output is written next to this script: strongswan/ and frr-bird/.
# Every wait is bounded; the whole run is bounded by `timeout` (600 s);
# namespaces, daemons and $WORK are removed on exit (trap).

set -u

if [ "$(id -u)" != 0 ]; then echo "run as root" >&2; exit 1; fi
if [ -z "${TW_CAPTURE_INNER:-}" ]; then
    export TW_CAPTURE_INNER=1
    exec timeout -k 10 600 "$0" "$@"
fi

OUT="${TW_OUT:-$(cd "$(dirname "$0")" && pwd)}"
SSOUT="$OUT/strongswan"
BGPOUT="$OUT/frr-bird"
WORK=/tmp/tw-capture
PY=/usr/bin/python3
CHARON=/usr/lib/ipsec/charon
NS_AWS=tw-aws
NS_CGW=tw-cgw
NS_NAT=tw-nat
AWS_OUT=192.0.2.10
CGW_OUT=198.51.100.20
AWS_IN=169.254.10.1
CGW_IN=169.254.10.2
PSK='tunnelwatch-test-psk-0123456789'
PIDS=()

log() { echo "[capture $(date +%T)] $*" >&2; }

kill_pid() { # pid: TERM, wait up to 5 s, then KILL
    local p=$1 i
    kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p" 2>/dev/null
    for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
}

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill_pid "$p"; done
    PIDS=()
    # anything still living inside our namespaces (by namespace, never by name)
    for ns in $NS_AWS $NS_CGW $NS_NAT; do
        for p in $(ip netns pids $ns 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del $ns 2>/dev/null
    done
}
final_cleanup() { cleanup; rm -rf "$WORK"; }
trap final_cleanup EXIT
trap 'log "interrupted"; exit 1' INT TERM

# wait_grep FILE REGEX TIMEOUT_S : poll until the extended regex appears
wait_grep() {
    local f=$1 re=$2 t=$3 i
    for i in $(seq 1 $((t * 5))); do
        grep -Eq -- "$re" "$f" 2>/dev/null && return 0
        sleep 0.2
    done
    log "timeout ($t s) waiting for /$re/ in $f"
    return 1
}
wait_path() { # PATH TIMEOUT_S
    local i
    for i in $(seq 1 $(($2 * 10))); do [ -e "$1" ] && return 0; sleep 0.1; done
    log "timeout waiting for $1"; return 1
}

setup_net() {
    cleanup
    ip netns add $NS_AWS
    ip netns add $NS_CGW
    ip link add veth-aws netns $NS_AWS type veth peer name veth-cgw netns $NS_CGW
    ip -n $NS_AWS link set lo up
    ip -n $NS_CGW link set lo up
    ip -n $NS_AWS addr add $AWS_OUT/24 dev veth-aws
    ip -n $NS_AWS addr add $AWS_IN/30 dev veth-aws
    ip -n $NS_CGW addr add $CGW_OUT/24 dev veth-cgw
    ip -n $NS_CGW addr add $CGW_IN/30 dev veth-cgw
    ip -n $NS_AWS link set veth-aws up
    ip -n $NS_CGW link set veth-cgw up
    ip -n $NS_AWS route add 198.51.100.0/24 dev veth-aws
    ip -n $NS_CGW route add 192.0.2.0/24 dev veth-cgw
    ip netns exec $NS_CGW ping -c 1 -W 2 $AWS_OUT >/dev/null || log "WARNING: outside ping failed"
}

# ---------------------------------------------------------------- strongSwan

SYSLOG_RX='
import os, socket, sys
path, out = sys.argv[1], sys.argv[2]
try: os.unlink(path)
except FileNotFoundError: pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path); os.chmod(path, 0o666)
with open(out, "wb", buffering=0) as f:
    while True:
        d = s.recv(65536)
        f.write(d if d.endswith(b"\n") else d + b"\n")
'

# Per-scenario knobs (set by each scenario before ss_start):
#   IKEVER  AWS_PROP CGW_PROP  AWS_ESP CGW_ESP  AWS_LTS AWS_RTS CGW_LTS CGW_RTS
#   AWS_PSK CGW_PSK  CGW_IKE_REKEY CGW_CHILD_REKEY  DPD  CGW_DPD_ACTION  LOGLEVELS
ss_defaults() {
    IKEVER=2
    AWS_PROP=aes256-sha256-modp2048; CGW_PROP=aes256-sha256-modp2048
    AWS_ESP=aes256-sha256-modp2048;  CGW_ESP=aes256-sha256-modp2048
    AWS_LTS=$AWS_IN/32; AWS_RTS=$CGW_IN/32; CGW_LTS=$CGW_IN/32; CGW_RTS=$AWS_IN/32
    AWS_PSK=$PSK; CGW_PSK=$PSK
    CGW_LOCAL_ADDR=$CGW_OUT
    CGW_IKE_REKEY=4h; CGW_CHILD_REKEY=1h
    DPD=10s; CGW_DPD_ACTION=clear
    LOGLEVELS="default = 1"
    # This kernel has no CONFIG_INET_ESP, so kernel (XFRM) SA install fails with
    # "Protocol not supported (93)". Scenarios that need an installed CHILD_SA use
    # strongSwan's userspace ESP (kernel-libipsec, TUN device). Side effect:
    # libipsec needs UDP encapsulation, so charon fakes NAT-D and BOTH sides log
    # "remote host is behind NAT". Pure-failure scenarios use kernel-netlink only.
    KIPSEC=netlink
}

ss_write_conf() { # side scenario
    local side=$1 scn=$2 d=$WORK/$1
    local myid=$AWS_OUT; [ "$side" = cgw ] && myid=$CGW_OUT
    local me peer conn child prop esp lts rts psk ikerekey childrekey dpdact kplug=
    [ "$KIPSEC" = libipsec ] && kplug=kernel-libipsec
    if [ "$side" = aws ]; then
        me=$AWS_OUT; peer=$CGW_OUT; conn=aws-tunnel1; child=aws-tunnel1-esp
        prop=$AWS_PROP; esp=$AWS_ESP; lts=$AWS_LTS; rts=$AWS_RTS; psk=$AWS_PSK
        ikerekey=4h; childrekey=1h; dpdact=clear
    else
        me=$CGW_LOCAL_ADDR; peer=$AWS_OUT; conn=vpn-tunnel1; child=vpn-tunnel1-esp
        prop=$CGW_PROP; esp=$CGW_ESP; lts=$CGW_LTS; rts=$CGW_RTS; psk=$CGW_PSK
        ikerekey=$CGW_IKE_REKEY; childrekey=$CGW_CHILD_REKEY; dpdact=$CGW_DPD_ACTION
    fi
    mkdir -p "$d"
    cat >"$d/strongswan.conf" <<EOF
charon {
    load_modular = no
    load = random nonce aes sha1 sha2 md5 hmac xcbc gmp pem pkcs1 pubkey x509 revocation constraints kdf $kplug kernel-netlink socket-default vici counters
    retransmit_tries = 2
    retransmit_timeout = 1
    retransmit_base = 1.2
    plugins {
        vici {
            socket = unix://$d/charon.vici
        }
    }
    filelog {
        tw {
            path = $SSOUT/$scn.$side.log
            time_format = %b %e %T
            ike_name = yes
            append = no
            flush_line = yes
            $LOGLEVELS
        }
    }
    syslog {
        identifier = charon
        daemon {
            ike_name = yes
            $LOGLEVELS
        }
    }
}
swanctl {
    # only what swanctl needs here; avoids its "plugin 'x': failed to load" noise
    load = random nonce aes sha1 sha2 md5 hmac gmp pem pkcs1 pubkey x509
}
EOF
    cat >"$d/swanctl.conf" <<EOF
connections {
    $conn {
        version = $IKEVER
        local_addrs = $me
        remote_addrs = $peer
        proposals = $prop
        rekey_time = $ikerekey
        dpd_delay = $DPD
        local {
            auth = psk
            id = $myid
        }
        remote {
            auth = psk
            id = $peer
        }
        children {
            $child {
                local_ts = $lts
                remote_ts = $rts
                esp_proposals = $esp
                rekey_time = $childrekey
                dpd_action = $dpdact
                start_action = none
            }
        }
    }
}
secrets {
    ike-$conn {
        id-1 = $myid
        id-2 = $peer
        secret = "$psk"
    }
}
EOF
}

ss_start() { # side scenario
    local side=$1 scn=$2 d=$WORK/$1 ns
    [ "$side" = aws ] && ns=$NS_AWS || ns=$NS_CGW
    rm -rf "$d"; ss_write_conf "$side" "$scn"
    rm -f "$SSOUT/$scn.$side.log" "$SSOUT/$scn.$side.syslog"
    $PY -c "$SYSLOG_RX" "$d/devlog" "$SSOUT/$scn.$side.syslog" &
    PIDS+=($!)
    wait_path "$d/devlog" 5 || return 1
    STRONGSWAN_CONF=$d/strongswan.conf ip netns exec $ns unshare -m --propagation private \
        bash -c "mount -t tmpfs -o mode=755 tmpfs /run &&
                 mount -t tmpfs -o mode=755 tmpfs /dev &&
                 mknod -m 666 /dev/null c 1 3 && mknod -m 666 /dev/zero c 1 5 &&
                 mknod -m 666 /dev/random c 1 8 && mknod -m 666 /dev/urandom c 1 9 &&
                 mkdir /dev/net && mknod -m 666 /dev/net/tun c 10 200 &&
                 ln -s $d/devlog /dev/log &&
                 exec $CHARON" </dev/null >"$d/charon.stderr" 2>&1 &
    PIDS+=($!)
    eval "CHARON_PID_$side=$!"
    wait_path "$d/charon.vici" 10 || { cat "$d/charon.stderr" >&2; return 1; }
    sleep 0.3
    STRONGSWAN_CONF=$d/strongswan.conf swanctl --load-all --file "$d/swanctl.conf" --uri "unix://$d/charon.vici" \
        >"$d/load.txt" 2>&1 || { log "swanctl load failed ($side)"; cat "$d/load.txt" >&2; }
}

sw() { # side swanctl-args...
    local side=$1; shift
    STRONGSWAN_CONF=$WORK/$side/strongswan.conf stdbuf -oL swanctl "$@" --uri "unix://$WORK/$side/charon.vici"
}

ss_stop() {
    local p
    p=${CHARON_PID_cgw:-}; [ -n "$p" ] && kill_pid "$p"
    p=${CHARON_PID_aws:-}; [ -n "$p" ] && kill_pid "$p"
    sleep 0.5
    cleanup          # kills syslog receivers, deletes namespaces
    unset CHARON_PID_cgw CHARON_PID_aws
}

ss_begin() { # scenario
    log "strongswan scenario $1"
    setup_net
    ss_start aws "$1" && ss_start cgw "$1"
}

ss_initiate() { # scenario  -> swanctl's own streamed output is kept too
    sw cgw --initiate --child vpn-tunnel1-esp --timeout 15 \
        >"$SSOUT/$1.cgw.swanctl-initiate.txt" 2>&1
}

ss_ikev2_success() {
    local s=ikev2-success-rekey-delete
    ss_defaults; KIPSEC=libipsec; CGW_IKE_REKEY=30s; CGW_CHILD_REKEY=12s
    ss_begin $s || { ss_stop; return; }
    ss_initiate $s
    wait_grep "$SSOUT/$s.cgw.log" 'CHILD_SA .* established' 15
    wait_grep "$SSOUT/$s.cgw.log" 'inbound CHILD_SA .* established' 20
    wait_grep "$SSOUT/$s.cgw.log" 'IKE_SA .*rekeyed|rekeying IKE_SA' 20
    sleep 2
    ip netns exec $NS_CGW ping -c 5 -i 0.2 -W 1 -I $CGW_IN $AWS_IN >"$WORK/ping.txt" 2>&1 \
        || log "ping through tunnel failed: $(tail -2 "$WORK/ping.txt")"
    sw cgw --list-sas >"$SSOUT/list-sas.txt" 2>"$WORK/ls.err"
    sw cgw --list-sas --raw >"$SSOUT/list-sas-raw.txt" 2>>"$WORK/ls.err"
    sw cgw --list-sas --pretty >"$SSOUT/list-sas-pretty.txt" 2>>"$WORK/ls.err"
    sw cgw --counters --all >"$SSOUT/counters.txt" 2>>"$WORK/ls.err"
    sw cgw --terminate --ike vpn-tunnel1 --timeout 10 >/dev/null 2>&1
    wait_grep "$SSOUT/$s.aws.log" 'deleting IKE_SA|IKE_SA deleted' 10
    sleep 1
    ss_stop
}

ss_verbose() {
    local s=ikev2-success-verbose
    ss_defaults; KIPSEC=libipsec; LOGLEVELS="default = 1
            ike = 2
            cfg = 2"
    ss_begin $s || { ss_stop; return; }
    ss_initiate $s
    wait_grep "$SSOUT/$s.aws.log" 'CHILD_SA .* established' 15
    sw cgw --terminate --ike vpn-tunnel1 --timeout 10 >/dev/null 2>&1
    wait_grep "$SSOUT/$s.aws.log" 'IKE_SA deleted|deleting IKE_SA' 10
    sleep 1
    ss_stop
}

ss_fail() { # scenario aws-regex-to-wait-for [cgw-regex-to-wait-for]
    local s=$1
    ss_begin $s || { ss_stop; return; }
    ss_initiate $s
    wait_grep "$SSOUT/$s.aws.log" "$2" 15
    [ -n "${3:-}" ] && wait_grep "$SSOUT/$s.cgw.log" "$3" 20
    sleep 2
    # if an IKE_SA survived (CHILD failures), delete it cleanly
    sw cgw --terminate --ike vpn-tunnel1 --timeout 5 >/dev/null 2>&1
    sleep 1
    ss_stop
}

ss_psk_mismatch()  { ss_defaults; CGW_PSK='wrong-psk-on-customer-side'; ss_fail ikev2-psk-mismatch 'AUTHENTICATION_FAILED|MAC mismatch'; }
ss_ike_prop()      { ss_defaults; CGW_PROP=aes128-sha1-modp1024; ss_fail ikev2-ike-proposal-mismatch 'NO_PROP|proposals unacceptable'; }
ss_esp_prop()      { ss_defaults; AWS_ESP=aes256-sha256; CGW_ESP=aes128-sha1; ss_fail ikev2-esp-proposal-mismatch 'NO_PROPOSAL_CHOSEN|no acceptable proposal'; }
ss_invalid_ke()    { ss_defaults; KIPSEC=libipsec; CGW_PROP=aes256-sha256-modp3072-modp2048; AWS_ESP=aes256-sha256; CGW_ESP=aes256-sha256; ss_fail ikev2-invalid-ke-retry 'CHILD_SA .* established'; }
ss_ts()            { ss_defaults; CGW_LTS=10.20.0.0/16; CGW_RTS=10.10.0.0/16; AWS_LTS=172.31.0.0/16; AWS_RTS=10.99.0.0/16; ss_fail ikev2-ts-unacceptable 'traffic selectors .* unacceptable|TS_UNACCEPT'; }
ss_v1_psk()        { ss_defaults; IKEVER=1; CGW_PSK='wrong-psk-on-customer-side'; ss_fail ikev1-psk-mismatch 'AUTHENTICATION_FAILED|INVALID_ID_INFORMATION|INVALID_HASH|PAYLOAD_MALFORMED|parsing .* failed|message parsing failed' 'giving up after|establishing IKE_SA failed'; }
ss_sad_fail()      { ss_defaults; ss_fail ikev2-kernel-sad-install-failed 'unable to install'; }
ss_v1_prop()       { ss_defaults; IKEVER=1; CGW_PROP=aes128-sha1-modp1024; ss_fail ikev1-ike-proposal-mismatch 'NO_PROP|proposals unacceptable|no proposal'; }

ss_v1_success() {
    local s=ikev1-success-delete
    ss_defaults; KIPSEC=libipsec; IKEVER=1
    ss_begin $s || { ss_stop; return; }
    ss_initiate $s
    wait_grep "$SSOUT/$s.aws.log" 'CHILD_SA .* established' 15
    sleep 1
    sw cgw --terminate --ike vpn-tunnel1 --timeout 10 >/dev/null 2>&1
    wait_grep "$SSOUT/$s.aws.log" 'deleting IKE_SA|IKE_SA deleted|received DELETE' 10
    sleep 1
    ss_stop
}

ss_dpd() {
    local s=ikev2-dpd-timeout
    ss_defaults; KIPSEC=libipsec; DPD=2s; CGW_DPD_ACTION=restart
    ss_begin $s || { ss_stop; return; }
    ss_initiate $s
    wait_grep "$SSOUT/$s.cgw.log" 'CHILD_SA .* established' 15
    sleep 3   # a few successful DPD exchanges
    log "black-holing UDP in $NS_AWS"
    ip netns exec $NS_AWS iptables -A INPUT -p udp -j DROP
    wait_grep "$SSOUT/$s.aws.log" 'giving up after' 30
    wait_grep "$SSOUT/$s.cgw.log" 'giving up after' 30
    # cgw dpd_action=restart: let the re-initiation time out as well
    wait_grep "$SSOUT/$s.cgw.log" 'establishing IKE_SA failed|peer not responding' 20
    sleep 1
    ss_stop
}

# (h) real NAT: tw-cgw (10.0.0.2) -> tw-nat (SNAT to 198.51.100.20, UDP ports
# 61000-61100) -> tw-aws (192.0.2.10). Uses libipsec on both sides.
setup_net_nat() {
    cleanup
    ip netns add $NS_AWS; ip netns add $NS_CGW; ip netns add $NS_NAT
    ip link add veth-aws netns $NS_AWS type veth peer name veth-nato netns $NS_NAT
    ip link add veth-cgw netns $NS_CGW type veth peer name veth-nati netns $NS_NAT
    for ns in $NS_AWS $NS_CGW $NS_NAT; do ip -n $ns link set lo up; done
    ip -n $NS_AWS addr add $AWS_OUT/24 dev veth-aws
    ip -n $NS_AWS addr add $AWS_IN/30 dev veth-aws
    ip -n $NS_NAT addr add $CGW_OUT/24 dev veth-nato
    ip -n $NS_NAT addr add 10.0.0.1/24 dev veth-nati
    ip -n $NS_CGW addr add 10.0.0.2/24 dev veth-cgw
    ip -n $NS_CGW addr add $CGW_IN/30 dev veth-cgw
    ip -n $NS_AWS link set veth-aws up; ip -n $NS_CGW link set veth-cgw up
    ip -n $NS_NAT link set veth-nato up; ip -n $NS_NAT link set veth-nati up
    ip -n $NS_AWS route add 198.51.100.0/24 dev veth-aws
    ip -n $NS_NAT route add 192.0.2.0/24 dev veth-nato
    ip -n $NS_CGW route add default via 10.0.0.1
    ip netns exec $NS_NAT sysctl -qw net.ipv4.ip_forward=1
    ip netns exec $NS_NAT iptables -t nat -A POSTROUTING -o veth-nato -p udp -j SNAT --to-source $CGW_OUT:61000-61100
    ip netns exec $NS_NAT iptables -t nat -A POSTROUTING -o veth-nato -j SNAT --to-source $CGW_OUT
}

ss_nat() {
    local s=ikev2-nat-traversal
    ss_defaults; KIPSEC=libipsec; CGW_LOCAL_ADDR=10.0.0.2
    log "strongswan scenario $s"
    setup_net_nat
    { ss_start aws $s && ss_start cgw $s; } || { ss_stop; return; }
    ss_initiate $s
    wait_grep "$SSOUT/$s.aws.log" 'CHILD_SA .* established' 15
    sleep 1
    ip netns exec $NS_CGW ping -c 3 -i 0.2 -W 1 -I $CGW_IN $AWS_IN >"$WORK/ping.txt" 2>&1 \
        || log "ping through NAT-T tunnel failed: $(tail -2 "$WORK/ping.txt")"
    sleep 1
    sw cgw --terminate --ike vpn-tunnel1 --timeout 10 >/dev/null 2>&1
    wait_grep "$SSOUT/$s.aws.log" 'IKE_SA deleted|deleting IKE_SA' 10
    sleep 1
    ss_stop
}

run_strongswan() {
    local all="ikev2_success psk_mismatch ike_prop esp_prop invalid_ke ts dpd sad_fail v1_success v1_psk v1_prop verbose nat"
    local list="${*:-$all}" t
    mkdir -p "$SSOUT"
    for t in $list; do "ss_$t"; done
}

# ---------------------------------------------------------------- BGP
# FRR (customer gateway, AS 65000, 169.254.10.2) in tw-cgw;
# BIRD 2 ("AWS" virtual private gateway, AS 64512, 169.254.10.1) in tw-aws.
FRR=/usr/lib/frr
FRR_AS=65000
BIRD_AS=64512

# knobs: FRR_REMOTE_AS BIRD_PEER_AS FRR_NETS BIRD_ROUTES FRR_MAXPFX BIRD_IMPORT_LIMIT
bgp_defaults() {
    FRR_REMOTE_AS=$BIRD_AS; BIRD_PEER_AS=$FRR_AS
    FRR_NETS="10.20.0.0/16"
    BIRD_ROUTES="172.31.0.0/16"
    FRR_MAXPFX=""; BIRD_IMPORT_LIMIT=""
}

bgp_write_conf() { # scenario
    local scn=$1 d=$WORK/frr b=$WORK/bird n r
    mkdir -p "$d" "$b"; chmod 777 "$d"
    cat >"$d/zebra.conf" <<EOC
hostname cgw-zebra
log file $d/zebra.log informational
EOC
    {
        echo "frr defaults traditional"
        echo "hostname cgw-frr"
        echo "log file $BGPOUT/$scn.frr.log debugging"
        echo "log timestamp precision 3"
        echo "debug bgp neighbor-events"
        echo "!"
        echo "router bgp $FRR_AS"
        echo " bgp router-id $CGW_IN"
        echo " bgp log-neighbor-changes"
        echo " no bgp ebgp-requires-policy"
        echo " no bgp network import-check"
        echo " neighbor $AWS_IN remote-as $FRR_REMOTE_AS"
        echo " neighbor $AWS_IN description aws-tunnel1"
        echo " neighbor $AWS_IN timers 3 9"
        echo " neighbor $AWS_IN timers connect 2"
        echo " !"
        echo " address-family ipv4 unicast"
        for n in $FRR_NETS; do echo "  network $n"; done
        [ -n "$FRR_MAXPFX" ] && echo "  neighbor $AWS_IN maximum-prefix $FRR_MAXPFX"
        echo " exit-address-family"
        echo "!"
    } >"$d/bgpd.conf"
    {
        echo "log \"$BGPOUT/$scn.bird.log\" all;"
        echo "router id $AWS_IN;"
        echo "protocol device { scan time 10; }"
        echo "protocol static vpc_routes {"
        echo "    ipv4;"
        for r in $BIRD_ROUTES; do echo "    route $r blackhole;"; done
        echo "}"
        echo "protocol bgp cgw_tunnel1 {"
        echo "    description \"customer gateway tunnel 1\";"
        echo "    local $AWS_IN as $BIRD_AS;"
        echo "    neighbor $CGW_IN as $BIRD_PEER_AS;"
        echo "    hold time 9;"
        echo "    keepalive time 3;"
        echo "    connect retry time 2;"
        echo "    error wait time 1, 4;"
        echo "    debug { states, events };"
        echo "    ipv4 {"
        echo "        import all;"
        echo "        export where source = RTS_STATIC;"
        [ -n "$BIRD_IMPORT_LIMIT" ] && echo "        import limit $BIRD_IMPORT_LIMIT action restart;"
        echo "    };"
        echo "}"
    } >"$b/bird.conf"
}

bgp_begin() { # scenario
    local scn=$1 d=$WORK/frr b=$WORK/bird
    log "bgp scenario $scn"
    setup_net
    rm -rf "$d" "$b"; bgp_write_conf "$scn"
    rm -f "$BGPOUT/$scn.frr.log" "$BGPOUT/$scn.bird.log"
    # FRR daemons drop privileges to user frr before opening their log file
    : >"$BGPOUT/$scn.frr.log"; chown frr:frr "$BGPOUT/$scn.frr.log"
    ip netns exec $NS_AWS bird -f -c "$b/bird.conf" -s "$b/bird.ctl" -P "$b/bird.pid" \
        </dev/null >"$b/stderr" 2>&1 &
    PIDS+=($!)
    ip netns exec $NS_CGW $FRR/zebra -f "$d/zebra.conf" -i "$d/zebra.pid" \
        -z "$d/zserv.api" --vty_socket "$d" </dev/null >"$d/zebra.stderr" 2>&1 &
    PIDS+=($!)
    wait_path "$d/zserv.api" 10
    ip netns exec $NS_CGW $FRR/bgpd -f "$d/bgpd.conf" -i "$d/bgpd.pid" \
        -z "$d/zserv.api" --vty_socket "$d" </dev/null >"$d/bgpd.stderr" 2>&1 &
    PIDS+=($!)
    wait_path "$b/bird.ctl" 10 || cat "$b/stderr" >&2
    wait_path "$d/bgpd.vty" 10 || cat "$d/bgpd.stderr" >&2
}

vty() { ip netns exec $NS_CGW vtysh --vty_socket "$WORK/frr" -d bgpd "$@"; }
bc()  { ip netns exec $NS_AWS birdc -s "$WORK/bird/bird.ctl" "$@"; }

bgp_stop() { sleep 1; cleanup; chown root:root "$BGPOUT"/*.frr.log 2>/dev/null; }

FRR_UP='ADJCHANGE: neighbor .* Up'
FRR_DOWN='ADJCHANGE: neighbor .* Down'
BIRD_UP='State changed to up'

bgp_adminshut() {
    local s=bgp-established-admin-shutdown
    bgp_defaults
    bgp_begin $s
    wait_grep "$BGPOUT/$s.frr.log" "$FRR_UP" 30
    wait_grep "$BGPOUT/$s.bird.log" "$BIRD_UP" 10
    sleep 4
    vty -c 'show bgp summary' >"$BGPOUT/frr-show-bgp-summary.txt" 2>&1
    vty -c 'show bgp ipv4 unicast' >"$BGPOUT/frr-show-bgp-ipv4.txt" 2>&1
    bc show protocols all cgw_tunnel1 >"$BGPOUT/bird-show-protocols-all.txt" 2>&1
    bc show route >"$BGPOUT/bird-show-route.txt" 2>&1
    log "FRR: neighbor shutdown"
    vty -c 'configure terminal' -c "router bgp $FRR_AS" -c "neighbor $AWS_IN shutdown message maintenance by customer" >/dev/null 2>&1
    wait_grep "$BGPOUT/$s.bird.log" 'Received: Administrative shutdown|Administrative shutdown' 15
    sleep 3
    log "FRR: no neighbor shutdown"
    vty -c 'configure terminal' -c "router bgp $FRR_AS" -c "no neighbor $AWS_IN shutdown" >/dev/null 2>&1
    for i in $(seq 1 40); do [ "$(grep -Ec "$FRR_UP" "$BGPOUT/$s.frr.log")" -ge 2 ] && break; sleep 0.5; done
    sleep 3
    log "BIRD: disable"
    bc disable cgw_tunnel1 >/dev/null 2>&1
    for i in $(seq 1 40); do [ "$(grep -Ec "$FRR_DOWN" "$BGPOUT/$s.frr.log")" -ge 2 ] && break; sleep 0.5; done
    sleep 2
    log "BIRD: enable"
    bc enable cgw_tunnel1 >/dev/null 2>&1
    for i in $(seq 1 40); do [ "$(grep -Ec "$FRR_UP" "$BGPOUT/$s.frr.log")" -ge 3 ] && break; sleep 0.5; done
    sleep 2
    bgp_stop
}

bgp_holdtimer() {
    local s=bgp-hold-timer-expired
    bgp_defaults
    bgp_begin $s
    wait_grep "$BGPOUT/$s.frr.log" "$FRR_UP" 30
    sleep 3
    log "black-holing TCP 179 in $NS_AWS"
    ip netns exec $NS_AWS iptables -A INPUT -p tcp --dport 179 -j DROP
    ip netns exec $NS_AWS iptables -A INPUT -p tcp --sport 179 -j DROP
    wait_grep "$BGPOUT/$s.bird.log" '[Hh]old timer expired' 20
    wait_grep "$BGPOUT/$s.frr.log" "$FRR_DOWN" 20
    sleep 4   # a few failed reconnects
    bgp_stop
}

bgp_badas_frr() {
    local s=bgp-bad-peer-as-frr-misconfigured
    bgp_defaults; FRR_REMOTE_AS=64513
    bgp_begin $s
    wait_grep "$BGPOUT/$s.bird.log" '[Bb]ad peer AS|Received: .*AS' 30
    sleep 5
    bgp_stop
}

bgp_badas_bird() {
    local s=bgp-bad-peer-as-bird-misconfigured
    bgp_defaults; BIRD_PEER_AS=65001
    bgp_begin $s
    wait_grep "$BGPOUT/$s.bird.log" '[Bb]ad peer AS' 30
    wait_grep "$BGPOUT/$s.frr.log" '[Nn]otification|NOTIFICATION' 10
    sleep 5
    bgp_stop
}

bgp_maxpfx_frr() {
    local s=bgp-max-prefix-frr
    bgp_defaults; FRR_MAXPFX=2
    BIRD_ROUTES="172.31.0.0/16 172.32.0.0/16 10.100.0.0/16 10.101.0.0/16 10.102.0.0/16"
    bgp_begin $s
    wait_grep "$BGPOUT/$s.frr.log" 'MAXPFX' 30
    wait_grep "$BGPOUT/$s.bird.log" 'Received: Maximum number of prefixes|prefixes' 10
    sleep 3
    bgp_stop
}

bgp_maxpfx_bird() {
    local s=bgp-import-limit-bird
    bgp_defaults; BIRD_IMPORT_LIMIT=2
    FRR_NETS="10.20.0.0/16 10.21.0.0/16 10.22.0.0/16 10.23.0.0/16 10.24.0.0/16"
    bgp_begin $s
    wait_grep "$BGPOUT/$s.bird.log" 'limit' 30
    sleep 8    # BIRD restarts the session, hits the limit again
    bgp_stop
}

run_bgp() {
    local all="adminshut holdtimer badas_frr badas_bird maxpfx_frr maxpfx_bird"
    local list="${*:-$all}" t
    mkdir -p "$BGPOUT"
    for t in $list; do "bgp_$t"; done
}

# ---------------------------------------------------------------- main
what=${1:-all}; shift || true
mkdir -p "$WORK"
case $what in
    strongswan) run_strongswan "$@" ;;
    bgp)        run_bgp "$@" ;;
    all)        run_strongswan; run_bgp ;;
    *) echo "usage: $0 [all|strongswan|bgp] [scenario...]" >&2; exit 2 ;;
esac
log "done"
