{{/*
Names, labels and the values the templates derive (config.json, memory limit,
listen addresses). Checks that span several values and that JSON Schema cannot
express well fail here with a message naming the values.
*/}}

{{- define "gpr.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gpr.fullname" -}}
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

{{/* The tenant: tenant.id, or the release name. */}}
{{- define "gpr.tenant" -}}
{{- default .Release.Name .Values.tenant.id -}}
{{- end -}}

{{/* The proxy pods (the doctor's pods carry component: doctor instead). */}}
{{- define "gpr.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gpr.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: proxy
{{- end -}}

{{- define "gpr.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "gpr.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
go-proxy-rewriter.io/tenant: {{ include "gpr.tenant" . | quote }}
{{- end -}}

{{- define "gpr.labels" -}}
{{ include "gpr.commonLabels" . }}
app.kubernetes.io/component: proxy
{{- end -}}

{{- define "gpr.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "gpr.interceptionImage" -}}
{{- if .Values.interception.image.repository -}}
{{- printf "%s:%s" .Values.interception.image.repository (default .Chart.AppVersion .Values.interception.image.tag) -}}
{{- else -}}
{{- include "gpr.image" . -}}
{{- end -}}
{{- end -}}

{{- define "gpr.caSecretName" -}}
{{- default (printf "%s-ca" (include "gpr.fullname" .)) .Values.ca.existingSecret -}}
{{- end -}}

{{- define "gpr.caBundleName" -}}
{{- default (printf "%s-ca-bundle" (include "gpr.fullname" .)) .Values.caBundle.configMapName -}}
{{- end -}}

{{/* true when the proxy shares the node's network namespace. */}}
{{- define "gpr.hostNetwork" -}}
{{- if and (eq .Values.mode "daemonset") (eq .Values.network.type "hostNetwork") -}}true{{- end -}}
{{- end -}}

{{/* Mount paths inside the proxy container. */}}
{{- define "gpr.paths" -}}
config: /etc/go-proxy-rewriter
ca: /etc/go-proxy-rewriter-ca
clientCa: /etc/go-proxy-rewriter-client-ca
state: /var/lib/go-proxy-rewriter
cache: /var/cache/go-proxy-rewriter
{{- end -}}

{{/*
Cross-value checks; included once by the workload template, so a bad
combination fails `helm template` / `helm install` with this message.
*/}}
{{- define "gpr.validate" -}}
{{- $v := .Values -}}
{{- if and $v.interception.enabled (not (include "gpr.hostNetwork" .)) -}}
{{- fail "interception.enabled needs mode: daemonset with network.type: hostNetwork (the rules live in the node's network namespace)" -}}
{{- end -}}
{{- if and $v.interception.enabled (eq (int $v.ports.https) 0) -}}
{{- fail "interception.enabled needs the HTTPS listener (ports.https must not be 0)" -}}
{{- end -}}
{{- if and (eq $v.mode "daemonset") (gt (int $v.updateStrategy.maxSurge) 0) -}}
{{- fail "updateStrategy.maxSurge must be 0: a surge pod on the same node cannot bind the ports (hostNetwork/hostPort) the old pod holds" -}}
{{- end -}}
{{- if and $v.ingress.enabled (ne $v.mode "deployment") -}}
{{- fail "ingress.enabled needs mode: deployment" -}}
{{- end -}}
{{- if and $v.ingress.enabled (eq (int $v.ports.https) 0) -}}
{{- fail "ingress.enabled needs the HTTPS listener (ports.https must not be 0)" -}}
{{- end -}}
{{- if and $v.ingress.enabled (not $v.ingress.host) -}}
{{- fail "ingress.host is required when ingress.enabled is true" -}}
{{- end -}}
{{- if and $v.ingress.enabled (eq $v.ingress.tlsMode "passthrough") $v.clientCa.existingSecret -}}
{{- fail "ingress.tlsMode: passthrough cannot be combined with clientCa: the go command's own handshake reaches the proxy and it cannot present a client certificate; use tlsMode: reencrypt" -}}
{{- end -}}
{{- if and $v.ingress.enabled (eq $v.ingress.tlsMode "reencrypt") $v.clientCa.existingSecret (not $v.ingress.backendClientSecret) -}}
{{- fail "ingress.backendClientSecret (namespace/name of the ingress's client certificate) is required with clientCa.existingSecret and ingress.tlsMode: reencrypt" -}}
{{- end -}}
{{- if and $v.ca.certManager.enabled (not $v.ca.certManager.issuerRef.name) -}}
{{- fail "ca.certManager.issuerRef.name is required when ca.certManager.enabled is true" -}}
{{- end -}}
{{- if and $v.ca.certManager.enabled $v.ca.existingSecret -}}
{{- fail "set either ca.existingSecret (bring your own) or ca.certManager.enabled, not both" -}}
{{- end -}}
{{- if and (eq (int $v.ports.http) 0) (eq (int $v.ports.https) 0) -}}
{{- fail "ports.http and ports.https are both 0: the proxy would serve nothing" -}}
{{- end -}}
{{- end -}}

{{/*
config.json: the values' config with the keys the chart owns set on top.
Numbers stay integers (toJson of int64).
*/}}
{{- define "gpr.config" -}}
{{- $v := .Values -}}
{{- $paths := include "gpr.paths" . | fromYaml -}}
{{- $cfg := deepCopy $v.config -}}
{{- $listen := dict -}}
{{- range $name := list "http" "https" "admin" -}}
{{- $port := int (index $v.ports $name) -}}
{{- if eq $port 0 -}}
{{- $_ := set $listen $name nil -}}
{{- else -}}
{{- $_ := set $listen $name (printf ":%d" $port) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $cfg "listen" $listen -}}
{{- $tls := deepCopy (dig "tls" dict $v.config) -}}
{{- $_ := set $tls "dir" $paths.state -}}
{{- $_ := set $tls "ca" (dict "cert" (printf "%s/tls.crt" $paths.ca) "key" (printf "%s/tls.key" $paths.ca)) -}}
{{- if $v.clientCa.existingSecret -}}
{{- $_ := set $tls "clientCa" (printf "%s/%s" $paths.clientCa $v.clientCa.key) -}}
{{- end -}}
{{- $_ := set $cfg "tls" $tls -}}
{{- $cache := deepCopy (dig "cache" dict $v.config) -}}
{{- if $v.cacheDisk.enabled -}}
{{- $_ := set $cache "dir" $paths.cache -}}
{{- $_ := set $cache "diskMaxBytes" (int64 $v.cacheDisk.maxBytes) -}}
{{- $_ := set $cache "maxObjectBytes" (int64 $v.cacheDisk.maxObjectBytes) -}}
{{- else -}}
{{- /* Memory only: without it the proxy would default to cache/ in its read-only working directory. */ -}}
{{- $_ := set $cache "dir" nil -}}
{{- end -}}
{{- $_ := set $cfg "cache" $cache -}}
{{- if $v.reload.watch -}}
{{- $_ := set $cfg "reload" (dict "watch" true) -}}
{{- end -}}
{{- $cfg | toPrettyJson -}}
{{- end -}}

{{/* Memory limit: explicit, or cache.maxBytes + overhead (+ a Memory emptyDir), in Mi rounded up. */}}
{{- define "gpr.memoryLimit" -}}
{{- $v := .Values -}}
{{- if $v.resources.limits.memory -}}
{{- $v.resources.limits.memory -}}
{{- else -}}
{{- $bytes := add (int64 (dig "cache" "maxBytes" 268435456 $v.config)) (int64 $v.resources.memoryOverheadBytes) -}}
{{- if and $v.cacheDisk.enabled (eq $v.cacheDisk.type "emptyDir") (eq $v.cacheDisk.medium "Memory") -}}
{{- $bytes = add $bytes (include "gpr.cacheDirSizeBytes" . | int64) -}}
{{- end -}}
{{- printf "%dMi" (div (add $bytes 1048575) 1048576) -}}
{{- end -}}
{{- end -}}

{{/* Size limit of the cache emptyDir: the disk bound plus one object being spooled. */}}
{{- define "gpr.cacheDirSizeBytes" -}}
{{- add (int64 .Values.cacheDisk.maxBytes) (int64 .Values.cacheDisk.maxObjectBytes) -}}
{{- end -}}

{{- define "gpr.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- add (div (int64 (dig "shutdown" "drainTimeoutMs" 30000 .Values.config)) 1000) 10 -}}
{{- else -}}
{{- .Values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/* NetworkPolicy ports of the proxy listeners (container ports: policies see them after DNAT). */}}
{{- define "gpr.proxyPolicyPorts" -}}
{{- if .Values.ports.http }}
- protocol: TCP
  port: {{ .Values.ports.http | int }}
{{- end }}
{{- if .Values.ports.https }}
- protocol: TCP
  port: {{ .Values.ports.https | int }}
{{- end }}
{{- end -}}
