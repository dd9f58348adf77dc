#!/bin/bash
# Container HEALTHCHECK: HTTP/1.0 GET of PATH (default /-/healthy) on the
# address the daemon has bound, 0 on a 200. The address comes from the kernel's
# socket table, not from the configuration, so `listen:`, --web.listen-address
# and a config mounted over the default all work. bash's /dev/tcp is the HTTP
# client: the image has no curl.
set -uo pipefail
path=${1:-/-/healthy}

pid=
for p in /proc/[0-9]*; do
  if [[ $(readlink "$p/exe" 2>/dev/null) == /usr/bin/cerebras-metrics-proxy ]]; then
    pid=${p#/proc/}
    break
  fi
done
[[ -n $pid ]] || { echo "healthcheck: cerebras-metrics-proxy is not running"; exit 1; }

declare -A mine=()
for fd in /proc/"$pid"/fd/*; do
  link=$(readlink "$fd" 2>/dev/null) || continue
  [[ $link =~ ^socket:\[([0-9]+)\]$ ]] && mine[${BASH_REMATCH[1]}]=1
done

# /proc/net/tcp{,6}: "sl local rem st ... uid timeout inode"; st 0A = LISTEN.
# Addresses are the kernel's 32-bit words in host (little-endian) order.
word_to_v4() {
  local w=$1
  printf '%d.%d.%d.%d' 0x"${w:6:2}" 0x"${w:4:2}" 0x"${w:2:2}" 0x"${w:0:2}"
}
host= port=
while read -r _ local _ st _ _ _ _ _ inode _; do
  [[ $st == 0A && -n ${mine[$inode]:-} ]] || continue
  addr=${local%:*}
  port=$((16#${local#*:}))
  if [[ ${#addr} -eq 8 ]]; then
    host=$(word_to_v4 "$addr")
    [[ $host == 0.0.0.0 ]] && host=127.0.0.1
  elif [[ $addr == 00000000000000000000000000000000 ]]; then
    host=::1
  elif [[ $addr == 0000000000000000FFFF0000* ]]; then
    host=$(word_to_v4 "${addr:24:8}")
  else
    groups=()
    for i in 0 8 16 24; do
      w=${addr:i:8}
      groups+=("${w:6:2}${w:4:2}" "${w:2:2}${w:0:2}")
    done
    host=$(IFS=:; echo "${groups[*]}")
  fi
  break
done < <(cat /proc/"$pid"/net/tcp /proc/"$pid"/net/tcp6 2>/dev/null)
[[ -n $port ]] || { echo "healthcheck: cerebras-metrics-proxy has no listening socket"; exit 1; }

# A dual-stack [::] listener answers on ::1; where the container has no IPv6
# loopback, it answers on 127.0.0.1 too.
get() {
  exec 3<>"/dev/tcp/$1/$port" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$path" >&3
  IFS= read -r -t 2 status <&3 || return 1
  while IFS= read -r -t 2 _ <&3; do :; done
  exec 3<&-
  [[ $status == HTTP/1.?' 200'* ]]
}
status=
get "$host" 2>/dev/null || { [[ $host == ::1 ]] && get 127.0.0.1 2>/dev/null; } || {
  echo "healthcheck: GET $path on $host port $port: ${status:-no answer}"
  exit 1
}
echo "healthcheck: GET $path on $host port $port: ${status%$'\r'}"
