# tls.sh - sourced by deploy.sh: the certificates of a consensus
# deployment's etcd cluster, made with openssl by one script that the local
# provider runs on this host and the cloud plans run on the deploying
# machine (tests/cli/deploy-render.sh runs the script the plans carry).
#
# tls_script CLUSTER DAYS MEMBER=SANS...: a POSIX sh script that takes a
# directory and makes in it
#   ca.pem, ca-key.pem                 the cluster's own CA (CN CLUSTER-etcd-ca)
#   MEMBER.pem, MEMBER-key.pem         per member, for serving clients and for
#                                      the peer connections both ways (CN
#                                      CLUSTER-etcd-member, which the members
#                                      require of peers: --peer-cert-allowed-cn;
#                                      SANs: SANS, e.g. DNS:node1,DNS:localhost,IP:127.0.0.1)
#   client.pem, client-key.pem         the workers' client certificate (CN
#                                      CLUSTER-worker, no SAN: any address)
# P-256 keys, DAYS days of validity; the directory is mode 700 and every
# file 600 (umask 077).  The script refuses a directory that already holds
# a CA key: a second up must not replace the CA of a running cluster.
tls_script() {
	cl=$1 days=$2
	shift 2
	cat <<TLS
#!/bin/sh
# memories: the certificates of the etcd cluster '$cl' into DIR:
# a CA, one certificate per member (clients and peers), one client
# certificate for the workers.  Usage: sh etcd-tls.sh DIR
set -eu
[ \$# -eq 1 ] || { echo "usage: etcd-tls.sh DIR" >&2; exit 2; }
umask 077
mkdir -p "\$1"
cd "\$1"
[ ! -e ca-key.pem ] || { echo "etcd-tls.sh: \$1/ca-key.pem exists: destroy the deployment first" >&2; exit 1; }
# cert NAME CN EXTENSIONS: a P-256 key NAME-key.pem and NAME.pem signed by the CA
cert() {
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=\$2" -keyout "\$1-key.pem" -out "\$1.csr"
	printf '%b' "\$3" > "\$1.ext"
	openssl x509 -req -in "\$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days $days -extfile "\$1.ext" -out "\$1.pem"
	rm -f "\$1.csr" "\$1.ext"
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days $days -subj /CN=$cl-etcd-ca -keyout ca-key.pem -out ca.pem
TLS
	for m in "$@"; do
		printf "cert %s %s 'subjectAltName=%s\\\\nextendedKeyUsage=serverAuth,clientAuth\\\\n'\n" "${m%%=*}" "$cl-etcd-member" "${m#*=}"
	done
	printf "cert client %s-worker 'extendedKeyUsage=clientAuth\\\\n'\n" "$cl"
}
