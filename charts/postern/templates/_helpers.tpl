{{/*
Named templates of the postern chart.

Every template here takes a chart context: "." (or "$") inside this chart, and
".Subcharts.postern" in a parent chart that has postern as a dependency. Both have the
postern chart's .Values, .Chart, .Release and .Capabilities, so names and the image tag
come out the same in either place. The templates meant for parent charts are:

  postern.sidecar         the postern container (one list item), for initContainers in
                          native mode or containers in classic mode
  postern.initContainers  postern.sidecar when the sidecar is native, else nothing
  postern.containers      postern.sidecar when the sidecar is classic, else nothing
  postern.volumes         the pod volumes postern needs (Secret, schemas ConfigMap)
  postern.podAnnotations  checksum annotations that roll the pods when schemas change
*/}}

{{- define "postern.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "postern.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "postern.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "postern.labels" -}}
helm.sh/chart: {{ include "postern.chart" . }}
{{ include "postern.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "postern.selectorLabels" -}}
app.kubernetes.io/name: {{ include "postern.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* postern.image: repository:tag[@digest], the tag defaulting to the appVersion. */}}
{{- define "postern.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion | toString }}
{{- if eq $tag "latest" }}
{{- fail "image.tag: \"latest\" is not allowed; leave it empty for the chart's appVersion or pin a version" }}
{{- end }}
{{- $image := printf "%s:%s" .Values.image.repository $tag }}
{{- if .Values.image.digest }}
{{- $image = printf "%s@%s" $image .Values.image.digest }}
{{- end }}
{{- $image }}
{{- end }}

{{/* postern.nativeSidecar: "true" when postern runs as a native sidecar, else "". */}}
{{- define "postern.nativeSidecar" -}}
{{- $mode := .Values.sidecar.mode }}
{{- if eq $mode "native" }}true
{{- else if eq $mode "auto" }}
{{- if semverCompare ">=1.29.0-0" .Capabilities.KubeVersion.Version }}true{{ end }}
{{- else if ne $mode "classic" }}
{{- fail (printf "sidecar.mode: %q is not one of auto, native, classic" $mode) }}
{{- end }}
{{- end }}

{{/* postern.schemasConfigMapName: the ConfigMap mounted as POSTERN_SCHEMA_DIR, or "". */}}
{{- define "postern.schemasConfigMapName" -}}
{{- if .Values.schemas.existingConfigMap }}
{{- .Values.schemas.existingConfigMap }}
{{- else if .Values.schemas.files }}
{{- printf "%s-schemas" (include "postern.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "postern.secretsDir" -}}/etc/postern/secrets{{- end }}
{{- define "postern.schemasDir" -}}/etc/postern/schemas{{- end }}

{{/* postern.env: postern's environment (a YAML list of EnvVar). */}}
{{- define "postern.env" -}}
{{- $secret := required "secrets.existingSecret: name the Secret that holds the signing keys (see the chart README)" .Values.secrets.existingSecret -}}
{{- if eq (int .Values.ports.webhook) (int .Values.ports.admin) }}
{{- fail (printf "ports.admin: %v is ports.webhook too; postern refuses one port for both" .Values.ports.admin) }}
{{- end }}
{{- if has (int .Values.upstream.port) (list (int .Values.ports.webhook) (int .Values.ports.admin)) }}
{{- fail (printf "upstream.port: %v is one of postern's own ports; it is the port the app listens on, on 127.0.0.1" .Values.upstream.port) }}
{{- end }}
- name: POSTERN_LISTEN_ADDR
  value: {{ printf ":%v" .Values.ports.webhook | quote }}
- name: POSTERN_ADMIN_ADDR
  value: {{ printf ":%v" .Values.ports.admin | quote }}
- name: POSTERN_UPSTREAM_URL
  value: {{ printf "http://127.0.0.1:%v" .Values.upstream.port | quote }}
- name: POSTERN_UPSTREAM_TIMEOUT
  value: {{ .Values.upstream.timeout | quote }}
{{- if eq .Values.secrets.mountAs "file" }}
- name: POSTERN_SECRETS_FILE
  value: {{ printf "%s/%s" (include "postern.secretsDir" .) .Values.secrets.key | quote }}
{{- else if eq .Values.secrets.mountAs "env" }}
- name: POSTERN_SECRETS
  valueFrom:
    secretKeyRef:
      name: {{ $secret | quote }}
      key: {{ .Values.secrets.key | quote }}
{{- else }}
{{- fail (printf "secrets.mountAs: %q is not one of file, env" .Values.secrets.mountAs) }}
{{- end }}
{{- if include "postern.schemasConfigMapName" . }}
- name: POSTERN_SCHEMA_DIR
  value: {{ include "postern.schemasDir" . | quote }}
{{- end }}
{{- with .Values.config }}
- name: POSTERN_TIMESTAMP_TOLERANCE
  value: {{ .timestampTolerance | quote }}
- name: POSTERN_MAX_BODY_BYTES
  value: {{ .maxBodyBytes | int64 | quote }}
- name: POSTERN_EVENT_TYPE_POINTER
  value: {{ .eventTypePointer | quote }}
- name: POSTERN_UNKNOWN_EVENTS
  value: {{ .unknownEvents | quote }}
- name: POSTERN_DEDUPE
  value: {{ .dedupe | quote }}
- name: POSTERN_DEDUPE_TTL
  value: {{ .dedupeTTL | quote }}
- name: POSTERN_DEDUPE_MAX_ENTRIES
  value: {{ .dedupeMaxEntries | int64 | quote }}
- name: POSTERN_SHUTDOWN_TIMEOUT
  value: {{ .shutdownTimeout | quote }}
- name: POSTERN_LOG_LEVEL
  value: {{ .logLevel | quote }}
- name: POSTERN_AUDIT_BODY
  value: {{ .auditBody | toString | quote }}
- name: POSTERN_ENGINE
  value: {{ .engine | quote }}
{{- end }}
{{- range $name, $value := .Values.otel.env }}
{{- if not (hasPrefix "OTEL_" $name) }}
{{- fail (printf "otel.env: %q is not an OTEL_* variable; use sidecar.extraEnv" $name) }}
{{- end }}
{{- $v := $value }}
{{- if and (kindIs "float64" $value) (eq $value (float64 (int64 $value))) }}
{{- $v = int64 $value }}{{/* YAML's 1000000 is a float64, which toString writes 1e+06 */}}
{{- end }}
- name: {{ $name }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- with .Values.sidecar.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* postern.sidecar: the postern container, one list item. */}}
{{- define "postern.sidecar" -}}
- name: postern
  image: {{ include "postern.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if include "postern.nativeSidecar" . }}
  restartPolicy: Always
  {{- end }}
  ports:
    - name: postern
      containerPort: {{ .Values.ports.webhook }}
      protocol: TCP
    - name: postern-admin
      containerPort: {{ .Values.ports.admin }}
      protocol: TCP
  env:
    {{- include "postern.env" . | nindent 4 }}
  {{- if or (eq .Values.secrets.mountAs "file") (include "postern.schemasConfigMapName" .) }}
  volumeMounts:
    {{- if eq .Values.secrets.mountAs "file" }}
    - name: postern-secrets
      mountPath: {{ include "postern.secretsDir" . }}
      readOnly: true
    {{- end }}
    {{- if include "postern.schemasConfigMapName" . }}
    - name: postern-schemas
      mountPath: {{ include "postern.schemasDir" . }}
      readOnly: true
    {{- end }}
  {{- end }}
  startupProbe:
    httpGet:
      path: /healthz
      port: postern-admin
    periodSeconds: 1
    timeoutSeconds: 1
    failureThreshold: 30
  livenessProbe:
    httpGet:
      path: /healthz
      port: postern-admin
    periodSeconds: 10
    timeoutSeconds: 2
    failureThreshold: 3
  readinessProbe:
    httpGet:
      path: /readyz
      port: postern-admin
    periodSeconds: 5
    timeoutSeconds: 2
    failureThreshold: 2
  {{- with .Values.sidecar.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.sidecar.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{- define "postern.initContainers" -}}
{{- if include "postern.nativeSidecar" . }}
{{- include "postern.sidecar" . }}
{{- end }}
{{- end }}

{{- define "postern.containers" -}}
{{- if not (include "postern.nativeSidecar" .) }}
{{- include "postern.sidecar" . }}
{{- end }}
{{- end }}

{{/* postern.volumes: the pod volumes postern.sidecar mounts (list items, maybe none). */}}
{{- define "postern.volumes" -}}
{{- include "postern.volumeItems" . | trim }}
{{- end }}

{{- define "postern.volumeItems" -}}
{{- if eq .Values.secrets.mountAs "file" }}
- name: postern-secrets
  secret:
    secretName: {{ required "secrets.existingSecret: name the Secret that holds the signing keys (see the chart README)" .Values.secrets.existingSecret | quote }}
    defaultMode: 0444
    items:
      - key: {{ .Values.secrets.key | quote }}
        path: {{ .Values.secrets.key | quote }}
{{- end }}
{{- with include "postern.schemasConfigMapName" . }}
- name: postern-schemas
  configMap:
    name: {{ . | quote }}
{{- end }}
{{- end }}

{{/* postern.podAnnotations: checksums that roll the pods when chart-managed config changes. */}}
{{- define "postern.podAnnotations" -}}
{{- if and .Values.schemas.files (not .Values.schemas.existingConfigMap) -}}
checksum/postern-schemas: {{ toJson .Values.schemas.files | sha256sum }}
{{- end }}
{{- end }}
