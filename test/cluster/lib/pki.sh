# The harness's certificates: one CA signs everything (ECDSA P-256 keys,
# quick to make). A certificate is remade when what it should say (its
# subject and addresses, kept beside it as NAME.spec) changes, e.g. after
# CLUSTER_NODE_NAME was changed.

# issue NAME SUBJECT EXTENSIONS: PKI/NAME.crt and NAME.key.
issue() {
  local name=$1 subject=$2 ext=$3 spec
  spec="$subject|$ext"
  [ -s "$PKI/$name.crt" ] && [ "$(cat "$PKI/$name.spec" 2>/dev/null)" = "$spec" ] && return 0
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -keyout "$PKI/$name.key" -subj "$subject" 2>/dev/null |
    openssl x509 -req -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -set_serial "0x$(openssl rand -hex 12)" -days 825 \
      -extfile <(printf '%b' "$ext") -out "$PKI/$name.crt" 2>/dev/null || fail "openssl: cannot issue $name"
  chmod 600 "$PKI/$name.key"
  echo "$spec" >"$PKI/$name.spec"
}

make_pki() {
  mkdir -p "$PKI"
  local server='basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n'
  local client='basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n'
  if [ ! -s "$PKI/ca.crt" ]; then
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -keyout "$PKI/ca.key" -out "$PKI/ca.crt" \
      -days 3650 -subj "/CN=nodeagent-harness-ca" 2>/dev/null || fail "openssl: cannot make the CA"
    chmod 600 "$PKI/ca.key"
    rm -f "$PKI"/*.spec # everything issued by an older CA goes
  fi
  # The kubelet's serving certificate: the tests verify it against the CA
  # at https://127.0.0.1; the API server reaches it by the node's name.
  issue kubelet-serving "/CN=$NODE_NAME" "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:$NODE_NAME,IP:$NODE_IP\n$server"
  # The tests' client: system:masters, so it is allowed by AlwaysAllow and
  # by the Webhook authorizer alike.
  issue client "/O=system:masters/CN=nodeagent-integration" "$client"
  issue admin "/O=system:masters/CN=harness-admin" "$client"
  issue apiserver "/CN=kube-apiserver" \
    "subjectAltName=IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n$server"
  issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
  issue kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "$client"
  issue controller-manager "/CN=system:kube-controller-manager" "$client"
  issue scheduler "/CN=system:kube-scheduler" "$client"
  if [ ! -s "$PKI/sa.key" ]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/sa.key" 2>/dev/null &&
      openssl ec -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null || fail "openssl: cannot make the ServiceAccount key"
    chmod 600 "$PKI/sa.key"
  fi
  local who
  for who in admin kubelet controller-manager scheduler; do
    kubeconfig "$who" >"$PKI/$who.kubeconfig"
  done
}

# kubeconfig WHO: a kubeconfig for the API server with WHO's certificate.
kubeconfig() {
  cat <<EOC
apiVersion: v1
kind: Config
clusters:
- name: nodeagent-harness
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $1
  user:
    client-certificate: $PKI/$1.crt
    client-key: $PKI/$1.key
contexts:
- name: $1@nodeagent-harness
  context: {cluster: nodeagent-harness, user: $1}
current-context: $1@nodeagent-harness
EOC
}
