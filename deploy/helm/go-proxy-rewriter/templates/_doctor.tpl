{{/*
The doctor's pod: `go-proxy-rewriter doctor --json` with the proxy's own
config, its listen addresses pointed at the proxy this pod should check (the
node's in daemonset mode, the Service in deployment mode), the CA
certificate (never the key) and, when rendered, the CA bundle as
SSL_CERT_FILE, the way a build pod trusts the proxy.
*/}}
{{- define "gpr.doctorPodTemplate" -}}
{{- $v := .Values -}}
{{- $paths := include "gpr.paths" . | fromYaml -}}
{{- $ns := .Release.Namespace -}}
{{- $full := include "gpr.fullname" . -}}
metadata:
  labels:
    {{- include "gpr.commonLabels" . | nindent 4 }}
    app.kubernetes.io/component: doctor
    go-proxy-rewriter.io/client: "true"
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . | quote }}
  {{- end }}
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
  containers:
    - name: doctor
      image: {{ include "gpr.image" . | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args:
        - doctor
        - --json
        - --config
        - {{ printf "%s/config.json" $paths.config | quote }}
        {{- /* Checks that do not apply to how build pods reach this proxy. */}}
        {{- $skip := list }}
        {{- if not $v.interception.enabled }}
        {{- $skip = append $skip "interception" }}
        {{- if not $v.ca.certificate }}
        {{- $skip = append $skip "trust" }}
        {{- end }}
        {{- end }}
        {{- with $skip }}
        - --skip
        {{- range . }}
        - {{ . }}
        {{- end }}
        {{- end }}
        {{- range $v.doctor.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      env:
        {{- if eq $v.mode "daemonset" }}
        {{- include "gpr.nodeEnv" . | nindent 8 }}
        {{- $nodePorts := $v.ports }}
        {{- if eq $v.network.type "hostPort" }}
        {{- $nodePorts = $v.network.hostPort }}
        {{- end }}
        {{- range $name := list "http" "https" "admin" }}
        - name: GPR_LISTEN_{{ upper $name }}
          value: {{ if eq (int (index $v.ports $name)) 0 }}""{{ else }}{{ printf "$(HOST_IP):%d" (int (index $nodePorts $name)) | quote }}{{ end }}
        {{- end }}
        {{- else }}
        - name: GPR_LISTEN_HTTP
          value: {{ if $v.ports.http }}{{ printf "%s.%s.svc:%d" $full $ns (int $v.service.proxy.port.http) | quote }}{{ else }}""{{ end }}
        - name: GPR_LISTEN_HTTPS
          value: {{ if $v.ports.https }}{{ printf "%s.%s.svc:%d" $full $ns (int $v.service.proxy.port.https) | quote }}{{ else }}""{{ end }}
        - name: GPR_LISTEN_ADMIN
          value: {{ printf "%s-admin.%s.svc:%d" $full $ns (int $v.ports.admin) | quote }}
        {{- end }}
        {{- if $v.ca.certificate }}
        - name: SSL_CERT_FILE
          value: {{ printf "/etc/go-proxy-rewriter-ca-bundle/%s" $v.caBundle.key | quote }}
        {{- end }}
      resources:
        requests:
          cpu: 10m
          memory: 64Mi
        limits:
          memory: 256Mi
      securityContext:
        {{- include "gpr.containerSecurityContext" . | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: {{ $paths.config | quote }}
          readOnly: true
        - name: ca
          mountPath: {{ $paths.ca | quote }}
          readOnly: true
        {{- if $v.ca.certificate }}
        - name: ca-bundle
          mountPath: /etc/go-proxy-rewriter-ca-bundle
          readOnly: true
        {{- end }}
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: config
      configMap:
        name: {{ $full }}
    - name: ca
      secret:
        secretName: {{ include "gpr.caSecretName" . }}
        defaultMode: 0444
        # The certificate only: the doctor compares issuers, it signs nothing.
        items:
          - key: tls.crt
            path: tls.crt
    {{- if $v.ca.certificate }}
    - name: ca-bundle
      configMap:
        name: {{ include "gpr.caBundleName" . }}
    {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
