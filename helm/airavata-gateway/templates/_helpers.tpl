{{/* Names and labels. */}}
{{- define "airavata.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "airavata.fullname" -}}
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

{{- define "airavata.selectorLabels" -}}
app.kubernetes.io/name: {{ include "airavata.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "airavata.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "airavata.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "airavata.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "airavata.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
A value as plain text. Helm reads numbers from values files as float64, which would print
1048576 as 1.048576e+06; whole numbers print as integers.
*/}}
{{- define "airavata.text" -}}
{{- if kindIs "float64" . }}
{{- if eq (float64 (int64 .)) . }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- else }}
{{- . }}
{{- end }}
{{- end }}

{{/* True ("true") when a value is set: not null and not the empty string. 0 counts as set. */}}
{{- define "airavata.isSet" -}}
{{- if not (or (kindIs "invalid" .) (and (kindIs "string" .) (eq . ""))) }}true{{ end }}
{{- end }}

{{/* Timing: the grace period, derived unless overridden. */}}
{{- define "airavata.drainTotal" -}}
{{- $d := .Values.drain }}
{{- add (int $d.preStopSeconds) (int $d.delaySeconds) (int $d.spreadSeconds) (int $d.timeoutSeconds) }}
{{- end }}

{{- define "airavata.gracePeriod" -}}
{{- if include "airavata.isSet" .Values.terminationGracePeriodSeconds }}
{{- int .Values.terminationGracePeriodSeconds }}
{{- else }}
{{- add (include "airavata.drainTotal" . | int) (int .Values.drain.marginSeconds) }}
{{- end }}
{{- end }}

{{/* Redis mode: "url", "sentinel" or "" (no Redis: every node alone). */}}
{{- define "airavata.redisMode" -}}
{{- $r := .Values.redis }}
{{- $url := or $r.url $r.existingSecret }}
{{- $sentinel := gt (len $r.sentinel.hosts) 0 }}
{{- if and $url $sentinel }}
{{- fail "redis: set either redis.url / redis.existingSecret or redis.sentinel.hosts, not both" }}
{{- else if $url }}url
{{- else if $sentinel }}sentinel
{{- end }}
{{- end }}

{{/* Checks that fail the render with a message naming the value to set. */}}
{{- define "airavata.validate" -}}
{{- $j := .Values.jwt }}
{{- if not (has $j.kind (list "secret" "publicKey" "jwks")) }}
{{- fail (printf "jwt.kind must be secret, publicKey or jwks; got %q" $j.kind) }}
{{- end }}
{{- if not $j.existingSecret }}
{{- if eq $j.kind "secret" }}
{{- $_ := required "jwt.secret is required (HS256, at least 32 bytes: openssl rand -hex 32); or set jwt.existingSecret, or jwt.kind=publicKey with jwt.publicKey" $j.secret }}
{{- if lt (len $j.secret) 32 }}
{{- fail (printf "jwt.secret is %d bytes; HS256 needs at least 32 (openssl rand -hex 32)" (len $j.secret)) }}
{{- end }}
{{- else if eq $j.kind "publicKey" }}
{{- $_ := required "jwt.publicKey (a PEM public key) is required with jwt.kind=publicKey; or set jwt.existingSecret" $j.publicKey }}
{{- else }}
{{- $_ := required "jwt.jwks (a JWKS document) is required with jwt.kind=jwks; or set jwt.existingSecret" $j.jwks }}
{{- end }}
{{- end }}
{{- $replicas := ternary (int .Values.autoscaling.maxReplicas) (int .Values.replicaCount) .Values.autoscaling.enabled }}
{{- if and (gt $replicas 1) (not (include "airavata.redisMode" .)) }}
{{- fail (printf "Redis is required for %d replicas (nodes without it cannot see each other's clients): set redis.url, redis.existingSecret or redis.sentinel.hosts, or replicaCount=1" $replicas) }}
{{- end }}
{{- $pdb := .Values.podDisruptionBudget }}
{{- if and $pdb.enabled (eq (hasKey $pdb "maxUnavailable") (hasKey $pdb "minAvailable")) }}
{{- fail "podDisruptionBudget: set exactly one of maxUnavailable and minAvailable" }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.secretName) }}
{{- fail "tls.secretName (a kubernetes.io/tls Secret) is required with tls.enabled" }}
{{- end }}
{{- /* The gateway refuses --redis-tls-ca without a rediss:// URL; say so before the pods crash.
  A URL in redis.existingSecret cannot be read here: the gateway checks that one at start. */}}
{{- if .Values.redis.tls.caSecret }}
{{- $mode := include "airavata.redisMode" . }}
{{- if eq $mode "sentinel" }}
{{- fail "redis.tls.caSecret needs a rediss:// URL: the gateway does not use TLS with Sentinel; set redis.url or redis.existingSecret instead of redis.sentinel.hosts, or leave redis.tls.caSecret empty" }}
{{- else if ne $mode "url" }}
{{- fail "redis.tls.caSecret needs a rediss:// URL in redis.url or redis.existingSecret" }}
{{- else if and (not .Values.redis.existingSecret) (not (hasPrefix "rediss://" .Values.redis.url)) }}
{{- fail "redis.tls.caSecret needs a rediss:// URL; redis.url does not start with rediss://" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name and key of the Secret that holds the JWT key. */}}
{{- define "airavata.jwtSecretName" -}}
{{- default (include "airavata.fullname" .) .Values.jwt.existingSecret }}
{{- end }}

{{- define "airavata.jwtSecretKey" -}}
{{- $defaults := dict "secret" "jwt-secret" "publicKey" "jwt-public-key.pem" "jwks" "jwks.json" }}
{{- if and .Values.jwt.existingSecret .Values.jwt.existingSecretKey }}
{{- .Values.jwt.existingSecretKey }}
{{- else }}
{{- get $defaults .Values.jwt.kind }}
{{- end }}
{{- end }}

{{/* The Secret made by the chart holds something (or every secret value comes from elsewhere). */}}
{{- define "airavata.ownSecretNeeded" -}}
{{- if or (not .Values.jwt.existingSecret) (and .Values.redis.url (not .Values.redis.existingSecret)) (and .Values.redis.sentinel.password (not .Values.redis.sentinel.existingSecret)) }}true{{ end }}
{{- end }}

{{- define "airavata.scheme" -}}
{{- ternary "HTTPS" "HTTP" .Values.tls.enabled }}
{{- end }}
