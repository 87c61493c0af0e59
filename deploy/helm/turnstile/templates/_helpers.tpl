{{/* Names and labels. */}}
{{- define "turnstile.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "turnstile.fullname" -}}
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

{{- define "turnstile.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "turnstile.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "component" "users-web"). */}}
{{- define "turnstile.selectorLabels" -}}
app.kubernetes.io/name: {{ include "turnstile.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "turnstile.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "turnstile.secretName" -}}
{{- default (printf "%s-secrets" (include "turnstile.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{- define "turnstile.poolerName" -}}
{{- printf "%s-pooler-rw" (include "turnstile.fullname" .) }}
{{- end }}

{{/* The services with a database each, in the order their migrations run. */}}
{{- define "turnstile.services" -}}
{{- toJson (list "users" "booking" "notifications" "web") }}
{{- end }}

{{- define "turnstile.port" -}}
{{- get (dict "users" "8000" "booking" "8001" "notifications" "8002" "web" "8080") . }}
{{- end }}

{{/* The image's role of a service's web server: `web` for the pages, else `<service>-web`. */}}
{{- define "turnstile.webRole" -}}
{{- if eq . "web" }}web{{ else }}{{ . }}-web{{ end }}
{{- end }}

{{- define "turnstile.natsUrl" -}}
{{- if .Values.natsUrl }}
{{- .Values.natsUrl }}
{{- else }}
{{- $nats := printf "%s-nats" .Release.Name }}
{{- $urls := list }}
{{- range $i := until (int .Values.nats.config.cluster.replicas) }}
{{- $urls = append $urls (printf "nats://%s-%d.%s-headless:4222" $nats $i $nats) }}
{{- end }}
{{- join "," $urls }}
{{- end }}
{{- end }}

{{/*
The security every Turnstile container runs with: uid 10001, nothing writable but the
/tmp emptyDir, no privilege to gain.
*/}}
{{- define "turnstile.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "turnstile.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "turnstile.podCommon" -}}
automountServiceAccountToken: false
securityContext:
  {{- include "turnstile.podSecurityContext" . | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 256Mi
{{- end }}

{{/*
A service's own environment: (dict "root" $ "service" "booking" "extra" .env).
Shared settings come from the ConfigMap; the database and the secret key from Secrets.
*/}}
{{- define "turnstile.serviceEnv" -}}
{{- $root := .root }}
{{- $service := .service }}
- name: SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "turnstile.secretName" $root }}
      key: {{ $service }}-secret-key
{{- if $root.Values.database.external.enabled }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.database.external.existingSecret }}
      key: {{ $service }}-database-url
{{- else }}
- name: DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "turnstile.fullname" $root }}-db-{{ $service }}
      key: password
- name: DATABASE_URL
  value: {{ printf "postgresql://%s:$(DB_PASSWORD)@%s:5432/%s" $service (include "turnstile.poolerName" $root) $service | quote }}
{{- end }}
{{- if eq $service "web" }}
{{- $fullname := include "turnstile.fullname" $root }}
{{- $tls := and $root.Values.ingress.enabled $root.Values.ingress.tls.enabled }}
- name: USERS_API_URL
  value: {{ printf "http://%s-users:8000" $fullname | quote }}
- name: BOOKING_API_URL
  value: {{ printf "http://%s-booking:8001" $fullname | quote }}
- name: NOTIFICATIONS_API_URL
  value: {{ printf "http://%s-notifications:8002" $fullname | quote }}
- name: SESSION_COOKIE_SECURE
  value: {{ ternary "true" "false" $tls | quote }}
- name: CSRF_TRUSTED_ORIGINS
  value: {{ printf "%s://%s" (ternary "https" "http" $tls) $root.Values.host | quote }}
{{- end }}
{{- if eq $service "notifications" }}
- name: EMAIL_HOST_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "turnstile.secretName" $root }}
      key: email-host-password
      optional: true
{{- end }}
{{- range $name, $value := .extra }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}

{{/* The settings the chart derives, shared by the ConfigMap and the migrations Job. */}}
{{- define "turnstile.sharedConfig" -}}
{{- $fullname := include "turnstile.fullname" . }}
{{- $hosts := list .Values.host "localhost" "127.0.0.1" }}
{{- range $service := include "turnstile.services" . | fromJsonArray }}
{{- $hosts = append $hosts (printf "%s-%s" $fullname $service) }}
{{- end }}
{{- $derived := dict
  "NATS_URL" (include "turnstile.natsUrl" .)
  "NATS_STREAM_REPLICAS" (toString .Values.natsStreamReplicas)
  "JWT_JWKS_URL" (printf "http://%s-users:8000/.well-known/jwks.json" $fullname)
  "ALLOWED_HOSTS" (join "," $hosts)
  "PYTHONDONTWRITEBYTECODE" "1"
}}
{{- toYaml (merge $derived .Values.config) }}
{{- end }}
