{{/* Names, truncated to 63 characters (DNS labels). */}}
{{- define "deltaserve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "deltaserve.fullname" -}}
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

{{- define "deltaserve.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The standard labels (https://helm.sh/docs/chart_best_practices/labels/). */}}
{{- define "deltaserve.labels" -}}
helm.sh/chart: {{ include "deltaserve.chart" . }}
{{ include "deltaserve.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: deltaserve
{{- end }}

{{- define "deltaserve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "deltaserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "deltaserve.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "deltaserve.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "deltaserve.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret holding the gateway configuration (the chart's, or an existing one). */}}
{{- define "deltaserve.configSecretName" -}}
{{- default (printf "%s-config" (include "deltaserve.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{- define "deltaserve.configSecretKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretKey }}{{ else }}gateway.yaml{{ end }}
{{- end }}

{{/* The Secret and key holding the scraper token for /metrics (the chart's, or an existing one). */}}
{{- define "deltaserve.metricsTokenSecretName" -}}
{{- default (printf "%s-metrics" (include "deltaserve.fullname" .)) .Values.metrics.scraperToken.existingSecret }}
{{- end }}
{{- define "deltaserve.metricsTokenSecretKey" -}}
{{- if .Values.metrics.scraperToken.existingSecret }}{{ .Values.metrics.scraperToken.existingSecretKey }}{{ else }}token{{ end }}
{{- end }}

{{/*
The scraper token the chart keeps: the one already in the cluster's Secret (upgrades keep it),
else a new random one, generated once per render (memoised in .Values so the Secret, the
configuration and its checksum agree).
*/}}
{{- define "deltaserve.metricsToken" -}}
{{- $memo := .Values.metrics.scraperToken }}
{{- if not (hasKey $memo "generated") }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "deltaserve.metricsTokenSecretName" .) }}
{{- if and $existing $existing.data (hasKey $existing.data "token") }}
{{- $_ := set $memo "generated" (index $existing.data "token" | b64dec) }}
{{- else }}
{{- $_ := set $memo "generated" (randAlphaNum 48) }}
{{- end }}
{{- end }}
{{- $memo.generated }}
{{- end }}

{{/* sha256 hex of the scraper token, for the gateway configuration ("" when none is known). */}}
{{- define "deltaserve.metricsTokenSha256" -}}
{{- if .Values.metrics.scraperToken.existingSecret }}{{ lower .Values.metrics.scraperToken.sha256 }}{{ else }}{{ include "deltaserve.metricsToken" . | sha256sum }}{{ end }}
{{- end }}

{{- define "deltaserve.containerPort" -}}8080{{- end }}
{{- define "deltaserve.stateDir" -}}/var/lib/deltaserve{{- end }}

{{/*
The public development key hashes (sha256 of dev-key and dev-admin-key, src/core/config-dev-keys.ts).
Only used when devMode is true and no keys are given.
*/}}
{{- define "deltaserve.devTenantHash" -}}7e9f8fd111802be56c379d597842e29b2cebd35ff2133d431a49fa556a18704e{{- end }}
{{- define "deltaserve.devAdminHash" -}}df76ff796f70d2c9cb055ea6280553caa27eda26b70e01082c160de75a05a4a9{{- end }}

{{/*
Combinations the schema cannot express; each message says what to set. Included by every
template that depends on them, so `helm template` and `helm install` stop before anything is
applied.
*/}}
{{- define "deltaserve.validate" -}}
{{- $v := .Values }}
{{- if and (not $v.devMode) (not $v.auth.existingSecret) (empty $v.auth.tenants) }}
{{- fail "deltaserve: no tenant keys. Production is the default: set auth.tenants (name, keySha256, tasks) or auth.existingSecret, or set devMode=true for a trial with the public development keys." }}
{{- end }}
{{- if not $v.devMode }}
{{- $dev := list (include "deltaserve.devTenantHash" .) (include "deltaserve.devAdminHash" .) }}
{{- range $tenant := $v.auth.tenants }}
{{- range $hash := $tenant.keySha256 }}
{{- if has (lower $hash) $dev }}
{{- fail (printf "deltaserve: auth.tenants[%s] uses the hash of a public development key; use your own key, or devMode=true for a trial." $tenant.name) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $hash := $v.auth.adminKeySha256 }}
{{- if has (lower $hash) $dev }}
{{- fail "deltaserve: auth.adminKeySha256 holds the hash of the public development admin key; use your own key, or devMode=true for a trial." }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $v.metrics.scraperToken.existingSecret (not $v.auth.existingSecret) (not $v.metrics.scraperToken.sha256) }}
{{- fail "deltaserve: metrics.scraperToken.existingSecret needs metrics.scraperToken.sha256 (the sha256 hex of the token it holds), which goes into the gateway configuration." }}
{{- end }}
{{- if and $v.persistence.enabled (or (gt (int $v.replicaCount) 1) $v.autoscaling.enabled) (not (has "ReadWriteMany" $v.persistence.accessModes)) }}
{{- fail "deltaserve: persistence.enabled with replicaCount > 1 or autoscaling.enabled needs a volume every replica mounts: set persistence.accessModes to [ReadWriteMany] (replicas share the registry state file under a lock; README: More than one replica). A ReadWriteOnce claim serves one replica." }}
{{- end }}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
{{- fail "deltaserve: autoscaling.minReplicas is greater than autoscaling.maxReplicas." }}
{{- end }}
{{- $graceMs := default 10000 $v.gateway.shutdownGraceMs }}
{{- if ge (int $graceMs) (mul (int $v.terminationGracePeriodSeconds) 1000) }}
{{- fail (printf "deltaserve: gateway.shutdownGraceMs (%d) must be less than terminationGracePeriodSeconds (%d s), or the kubelet kills the drain." (int $graceMs) (int $v.terminationGracePeriodSeconds)) }}
{{- end }}
{{- $pdb := $v.podDisruptionBudget }}
{{- if and $pdb.enabled (eq (kindIs "invalid" $pdb.minAvailable) (kindIs "invalid" $pdb.maxUnavailable)) }}
{{- fail "deltaserve: podDisruptionBudget needs exactly one of minAvailable and maxUnavailable (set the other to null)." }}
{{- end }}
{{- end }}

{{/* The gateway configuration file: values.gateway plus what the chart owns. */}}
{{- define "deltaserve.gatewayConfig" -}}
{{- $v := .Values }}
{{- $config := deepCopy $v.gateway }}
{{- $_ := set $config "devMode" $v.devMode }}
{{- $_ := set $config "listen" (dict "host" "0.0.0.0" "port" (int (include "deltaserve.containerPort" .))) }}
{{- $registry := deepCopy (default (dict) $config.registry) }}
{{- $_ := set $registry "stateFile" (printf "%s/registry-state.json" (include "deltaserve.stateDir" .)) }}
{{- $_ := set $config "registry" $registry }}
{{- if $v.auth.tenants }}
{{- $_ := set $config "tenants" $v.auth.tenants }}
{{- else }}
{{- $_ := set $config "tenants" (list (dict "name" "dev" "keySha256" (list (include "deltaserve.devTenantHash" .)) "tasks" (list "*"))) }}
{{- end }}
{{- if $v.auth.adminKeySha256 }}
{{- $_ := set $config "admin" (dict "keySha256" $v.auth.adminKeySha256) }}
{{- else if $v.devMode }}
{{- $_ := set $config "admin" (dict "keySha256" (list (include "deltaserve.devAdminHash" .))) }}
{{- end }}
{{- $telemetry := deepCopy (default (dict) $config.telemetry) }}
{{- $scrapers := concat (default (list) $telemetry.metricsKeySha256) (list (include "deltaserve.metricsTokenSha256" .)) }}
{{- $_ := set $telemetry "metricsKeySha256" (uniq $scrapers) }}
{{- $_ := set $config "telemetry" $telemetry }}
{{- toYaml $config }}
{{- end }}
