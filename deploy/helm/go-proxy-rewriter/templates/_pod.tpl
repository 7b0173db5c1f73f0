{{/*
The proxy's pod template, shared by the DaemonSet and the Deployment: the
proxy container, the interception sidecar or init container, the cache
directory owner, volumes and security contexts.
*/}}

{{- define "gpr.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Environment of the proxy (and of the doctor in daemonset mode): listen addresses on the node. */}}
{{- define "gpr.nodeEnv" -}}
- name: HOST_IP
  valueFrom:
    fieldRef:
      fieldPath: status.hostIP
{{- end -}}

{{/* GPR_LISTEN_* overrides: with hostNetwork the proxy binds the node's address only. */}}
{{- define "gpr.listenEnv" -}}
{{- range $name := list "http" "https" "admin" }}
{{- $port := int (index $.Values.ports $name) }}
- name: GPR_LISTEN_{{ upper $name }}
  value: {{ if eq $port 0 }}""{{ else }}{{ printf "$(HOST_IP):%d" $port | quote }}{{ end }}
{{- end }}
{{- end -}}

{{- define "gpr.interceptionContainer" -}}
{{- $ := .root -}}
{{- $v := $.Values -}}
name: intercept
image: {{ include "gpr.interceptionImage" $ | quote }}
imagePullPolicy: {{ $v.image.pullPolicy }}
command:
  - bash
  - /opt/go-proxy-rewriter-intercept/intercept.sh
  - {{ .action }}
env:
  {{- include "gpr.nodeEnv" $ | nindent 2 }}
  - name: GPR_TABLE
    value: {{ printf "go_proxy_rewriter_%s" (include "gpr.fullname" $ | replace "-" "_") | quote }}
  - name: GPR_HOSTS
    value: {{ join " " (dig "tls" "hosts" (list "proxy.golang.org" "goproxy.cn" "goproxy.io" "sum.golang.org") $v.config) | quote }}
  - name: GPR_HTTPS_PORT
    value: {{ $v.ports.https | int | quote }}
  - name: GPR_BYPASS_UIDS
    value: {{ prepend (default list $v.interception.bypassUids) (int $v.securityContext.runAsUser) | join " " | quote }}
  - name: GPR_EXTRA_ADDRESSES
    value: {{ join " " $v.interception.extraAddresses | quote }}
  - name: GPR_REFRESH_SECONDS
    value: {{ $v.interception.refreshSeconds | int | quote }}
resources:
  {{- toYaml $v.interception.resources | nindent 2 }}
securityContext:
  # Root with NET_ADMIN only (not privileged): enough for nft in the node's
  # network namespace, which hostNetwork shares.
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: false
  runAsUser: 0
  runAsGroup: 0
  capabilities:
    drop:
      - ALL
    add:
      - NET_ADMIN
  seccompProfile:
    type: RuntimeDefault
volumeMounts:
  - name: intercept
    mountPath: /opt/go-proxy-rewriter-intercept
    readOnly: true
{{- end -}}

{{- define "gpr.podTemplate" -}}
{{- $v := .Values -}}
{{- $paths := include "gpr.paths" . | fromYaml -}}
{{- $hostNetwork := include "gpr.hostNetwork" . -}}
{{- $daemonset := eq $v.mode "daemonset" -}}
metadata:
  labels:
    {{- include "gpr.labels" . | nindent 4 }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- $annotations := deepCopy $v.podAnnotations }}
  {{- if not $v.reload.watch }}
  {{- /* Without reload.watch a config change rolls the pods. */}}
  {{- $_ := set $annotations "checksum/config" (include "gpr.config" . | sha256sum) }}
  {{- end }}
  {{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- if $hostNetwork }}
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  {{- end }}
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . | quote }}
  {{- end }}
  terminationGracePeriodSeconds: {{ include "gpr.terminationGracePeriodSeconds" . }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: {{ $v.securityContext.runAsUser }}
    runAsGroup: {{ $v.securityContext.runAsGroup }}
    fsGroup: {{ $v.securityContext.fsGroup }}
    seccompProfile:
      type: RuntimeDefault
  {{- $hostPathCache := and $v.cacheDisk.enabled (eq $v.cacheDisk.type "hostPath") }}
  {{- $initIntercept := and $v.interception.enabled (eq $v.interception.mode "init") }}
  {{- if or $hostPathCache $initIntercept }}
  initContainers:
    {{- if $hostPathCache }}
    # A hostPath directory is created root-owned; fsGroup does not apply to
    # hostPath, so hand it to the proxy's user once.
    - name: cache-dir-owner
      image: {{ include "gpr.image" . | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      command:
        - chown
        - {{ printf "%d:%d" (int $v.securityContext.runAsUser) (int $v.securityContext.runAsGroup) | quote }}
        - {{ $paths.cache | quote }}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        runAsNonRoot: false
        runAsUser: 0
        runAsGroup: 0
        capabilities:
          drop:
            - ALL
          add:
            - CHOWN
        seccompProfile:
          type: RuntimeDefault
      resources:
        requests:
          cpu: 5m
          memory: 16Mi
        limits:
          memory: 32Mi
      volumeMounts:
        - name: cache
          mountPath: {{ $paths.cache | quote }}
    {{- end }}
    {{- if $initIntercept }}
    - {{- include "gpr.interceptionContainer" (dict "root" . "action" "apply") | nindent 6 }}
    {{- end }}
  {{- end }}
  containers:
    - name: proxy
      image: {{ include "gpr.image" . | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args:
        - serve
        - --config
        - {{ printf "%s/config.json" $paths.config | quote }}
      {{- if $hostNetwork }}
      env:
        {{- include "gpr.nodeEnv" . | nindent 8 }}
        {{- include "gpr.listenEnv" . | trim | nindent 8 }}
      {{- end }}
      ports:
        {{- if $v.ports.http }}
        - name: http
          containerPort: {{ $v.ports.http | int }}
          protocol: TCP
          {{- if and $daemonset (eq $v.network.type "hostPort") }}
          hostPort: {{ $v.network.hostPort.http | int }}
          {{- with $v.network.hostPort.hostIP }}
          hostIP: {{ . | quote }}
          {{- end }}
          {{- end }}
        {{- end }}
        {{- if $v.ports.https }}
        - name: https
          containerPort: {{ $v.ports.https | int }}
          protocol: TCP
          {{- if and $daemonset (eq $v.network.type "hostPort") }}
          hostPort: {{ $v.network.hostPort.https | int }}
          {{- with $v.network.hostPort.hostIP }}
          hostIP: {{ . | quote }}
          {{- end }}
          {{- end }}
        {{- end }}
        - name: admin
          containerPort: {{ $v.ports.admin | int }}
          protocol: TCP
          {{- if and $daemonset (eq $v.network.type "hostPort") }}
          hostPort: {{ $v.network.hostPort.admin | int }}
          {{- with $v.network.hostPort.hostIP }}
          hostIP: {{ . | quote }}
          {{- end }}
          {{- end }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: admin
        periodSeconds: {{ $v.probes.liveness.periodSeconds }}
        timeoutSeconds: {{ $v.probes.liveness.timeoutSeconds }}
        failureThreshold: {{ $v.probes.liveness.failureThreshold }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: admin
        periodSeconds: {{ $v.probes.readiness.periodSeconds }}
        timeoutSeconds: {{ $v.probes.readiness.timeoutSeconds }}
        failureThreshold: {{ $v.probes.readiness.failureThreshold }}
      {{- if not $daemonset }}
      lifecycle:
        # Let the Service drop this endpoint before the proxy stops accepting.
        preStop:
          exec:
            command:
              - sleep
              - "5"
      {{- end }}
      resources:
        requests:
          cpu: {{ $v.resources.requests.cpu | quote }}
          memory: {{ default (include "gpr.memoryLimit" .) $v.resources.requests.memory | quote }}
        limits:
          {{- with $v.resources.limits.cpu }}
          cpu: {{ . | quote }}
          {{- end }}
          memory: {{ include "gpr.memoryLimit" . | quote }}
      securityContext:
        {{- include "gpr.containerSecurityContext" . | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: {{ $paths.config | quote }}
          readOnly: true
        - name: ca
          mountPath: {{ $paths.ca | quote }}
          readOnly: true
        {{- if $v.clientCa.existingSecret }}
        - name: client-ca
          mountPath: {{ $paths.clientCa | quote }}
          readOnly: true
        {{- end }}
        - name: state
          mountPath: {{ $paths.state | quote }}
        - name: tmp
          mountPath: /tmp
        {{- if $v.cacheDisk.enabled }}
        - name: cache
          mountPath: {{ $paths.cache | quote }}
        {{- end }}
    {{- if and $v.interception.enabled (eq $v.interception.mode "sidecar") }}
    - {{- include "gpr.interceptionContainer" (dict "root" . "action" "sidecar") | nindent 6 }}
    {{- end }}
  volumes:
    # A directory mount, never subPath: kubelet updates it in place (the
    # ..data symlink swap) and reload.watch sees the change.
    - name: config
      configMap:
        name: {{ include "gpr.fullname" . }}
    - name: ca
      secret:
        secretName: {{ include "gpr.caSecretName" . }}
        defaultMode: 0440
        items:
          - key: tls.crt
            path: tls.crt
          - key: tls.key
            path: tls.key
    {{- if $v.clientCa.existingSecret }}
    - name: client-ca
      secret:
        secretName: {{ $v.clientCa.existingSecret }}
        defaultMode: 0440
        items:
          - key: {{ $v.clientCa.key }}
            path: {{ $v.clientCa.key }}
    {{- end }}
    - name: state
      emptyDir:
        sizeLimit: 16Mi
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if $v.cacheDisk.enabled }}
    - name: cache
      {{- if eq $v.cacheDisk.type "hostPath" }}
      hostPath:
        path: {{ $v.cacheDisk.hostPath.path | quote }}
        type: DirectoryOrCreate
      {{- else }}
      emptyDir:
        {{- with $v.cacheDisk.medium }}
        medium: {{ . }}
        {{- end }}
        sizeLimit: {{ printf "%dMi" (div (add (include "gpr.cacheDirSizeBytes" . | int64) 1048575) 1048576) | quote }}
      {{- end }}
    {{- end }}
    {{- if $v.interception.enabled }}
    - name: intercept
      configMap:
        name: {{ printf "%s-intercept" (include "gpr.fullname" .) }}
        defaultMode: 0555
    {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
