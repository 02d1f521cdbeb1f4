{{/* Chart name. */}}
{{- define "auth-sidecar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full resource name. */}}
{{- define "auth-sidecar.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "auth-sidecar.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "auth-sidecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "auth-sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "auth-sidecar.labels" -}}
helm.sh/chart: {{ include "auth-sidecar.chart" . }}
{{ include "auth-sidecar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "auth-sidecar.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "auth-sidecar.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "auth-sidecar.secretName" -}}
{{- default (include "auth-sidecar.fullname" .) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "auth-sidecar.redisHost" -}}
{{- printf "%s-redis" (include "auth-sidecar.fullname" .) -}}
{{- end -}}

{{/* The store URL without password; the password comes from $(REDIS_PASSWORD) in the env. */}}
{{- define "auth-sidecar.storeUrl" -}}
{{- if eq .Values.store.type "bundled" -}}
{{- printf "redis://%s:6379/0" (include "auth-sidecar.redisHost" .) -}}
{{- else if eq .Values.store.type "external" -}}
{{- .Values.redis.url -}}
{{- else -}}
memory://
{{- end -}}
{{- end -}}

{{/* Refuse setups that cannot work. */}}
{{- define "auth-sidecar.validate" -}}
{{- $multi := or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled -}}
{{- if and (eq .Values.mode "central") $multi (eq .Values.store.type "memory") -}}
{{- fail "auth-sidecar: several replicas need a shared store: set store.type=external (redis.url) or store.type=bundled; with memory:// each pod would keep its own sessions" -}}
{{- end -}}
{{- if and (eq .Values.store.type "external") (not .Values.redis.url) -}}
{{- fail "auth-sidecar: store.type=external needs redis.url" -}}
{{- end -}}
{{- if and (gt (int .Values.workers) 1) (eq .Values.store.type "memory") -}}
{{- fail (printf "auth-sidecar: workers: %v with store.type=memory (store_url memory://): each worker process would keep its own users, clients and sessions; set workers: 1 or a shared store (store.type=external or bundled)" .Values.workers) -}}
{{- end -}}
{{- if and (eq .Values.mode "sidecar") .Values.autoscaling.enabled -}}
{{- fail "auth-sidecar: autoscaling applies to mode=central only" -}}
{{- end -}}
{{- end -}}

{{/* The sidecar container: used by the Deployment and by the sidecar-mode snippet. */}}
{{- define "auth-sidecar.container" -}}
name: auth-sidecar
image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
imagePullPolicy: {{ .Values.image.pullPolicy }}
args: ["serve", "--config", "/etc/auth-sidecar/config.yaml", "--workers", "{{ .Values.workers }}"]
env:
  {{- if and .Values.redis.passwordSecret (ne .Values.store.type "memory") }}
  - name: REDIS_PASSWORD
    valueFrom:
      secretKeyRef: {name: {{ .Values.redis.passwordSecret }}, key: {{ .Values.redis.passwordKey }}}
  - name: AUTH_SIDECAR_STORE_URL
    value: {{ regexReplaceAll "^([a-z+]+)://" (include "auth-sidecar.storeUrl" .) "${1}://:$(REDIS_PASSWORD)@" | quote }}
  {{- end }}
  {{- if not .Values.auth.disableAdminApi }}
  - name: AUTH_SIDECAR_ADMIN_TOKEN
    valueFrom:
      secretKeyRef: {name: {{ include "auth-sidecar.secretName" . }}, key: admin-token}
  {{- end }}
ports:
  - {name: grpc, containerPort: {{ .Values.ports.grpc }}, protocol: TCP}
  - {name: http, containerPort: {{ .Values.ports.http }}, protocol: TCP}
livenessProbe:
  grpc: {port: {{ .Values.ports.grpc }}}
  initialDelaySeconds: 5
  periodSeconds: 10
readinessProbe:
  httpGet: {path: /readyz, port: http}
  periodSeconds: 5
  failureThreshold: 2
resources:
  {{- toYaml .Values.resources | nindent 2 }}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: ["ALL"]}
  seccompProfile: {type: RuntimeDefault}
volumeMounts:
  - {name: config, mountPath: /etc/auth-sidecar, readOnly: true}
  - {name: keys, mountPath: /etc/auth-sidecar-keys, readOnly: true}
  - {name: tmp, mountPath: /tmp}
{{- end -}}

{{- define "auth-sidecar.volumes" -}}
- name: config
  configMap: {name: {{ include "auth-sidecar.fullname" . }}}
- name: keys
  secret:
    secretName: {{ include "auth-sidecar.secretName" . }}
- name: tmp
  emptyDir: {}
{{- end -}}

{{/* The `service` an extension provider names (dict "root" . "proto" "grpc"|"http"): central mode the
     Kubernetes Service; sidecar mode the local hostname of a ServiceEntry, namespace-qualified
     because Istio looks the name up mesh-wide and several namespaces may define it. */}}
{{- define "auth-sidecar.providerService" -}}
{{- if eq .root.Values.mode "sidecar" -}}
{{- printf "%s/%s" .root.Release.Namespace (get .root.Values.istio.localHosts .proto) -}}
{{- else -}}
{{- printf "%s.%s.svc.cluster.local" (include "auth-sidecar.fullname" .root) .root.Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* The meshConfig.extensionProviders entries (gRPC and HTTP) for this install. */}}
{{- define "auth-sidecar.extensionProviders" -}}
{{- $managed := list "x-tenant-id" "x-org-id" "x-project-id" "x-user-id" "x-client-id" "x-scopes" "x-actor-id" -}}
extensionProviders:
  - name: {{ .Values.istio.providerName }}
    envoyExtAuthzGrpc:
      service: {{ include "auth-sidecar.providerService" (dict "root" . "proto" "grpc") }}
      port: {{ .Values.ports.grpc }}
      timeout: 2s
  - name: {{ .Values.istio.providerName }}-http
    envoyExtAuthzHttp:
      service: {{ include "auth-sidecar.providerService" (dict "root" . "proto" "http") }}
      port: {{ .Values.ports.http }}
      pathPrefix: /ext_authz
      timeout: 2s
      includeRequestHeadersInCheck: ["authorization", "x-auth-token", "x-project", "cookie", "dpop"]
      headersToUpstreamOnAllow: {{ toJson $managed }}
      headersToDownstreamOnDeny: ["www-authenticate", "content-type", "dpop-nonce"]
{{- end -}}
