{{/* Names, labels, images and the security contexts shared by every workload. */}}

{{- define "speech-fleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "speech-fleet.fullname" -}}
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

{{/* A component's resource name: fullname-component, within 63 characters. */}}
{{- define "speech-fleet.component" -}}
{{- printf "%s-%s" (include "speech-fleet.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: only these stable three, never the version or chart labels. */}}
{{- define "speech-fleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "speech-fleet.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "speech-fleet.labels" -}}
{{ include "speech-fleet.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: speech-fleet
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* repository:tag, or repository@digest when a digest is given. */}}
{{- define "speech-fleet.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion (toString .image.tag)) -}}
{{- end -}}
{{- end -}}

{{- define "speech-fleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "speech-fleet.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Pod-level security context (Pod Security Standards "restricted"). */}}
{{- define "speech-fleet.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security context: restricted, read-only root unless told otherwise. */}}
{{- define "speech-fleet.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ .readOnly }}
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "speech-fleet.gatewayHeadless" -}}
{{- include "speech-fleet.component" (dict "root" . "component" "gateway-headless") -}}
{{- end -}}

{{/* DNS name of the gateways' headless Service, as NGINX resolves it. */}}
{{- define "speech-fleet.gatewayHost" -}}
{{- if .Values.front.gatewayHost -}}
{{- .Values.front.gatewayHost -}}
{{- else -}}
{{- printf "%s.%s.svc.%s" (include "speech-fleet.gatewayHeadless" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}
{{- end -}}

{{/* The Riva Service of the bundled Riva (NIM or CPU server). */}}
{{- define "speech-fleet.rivaService" -}}
{{- if eq .Values.riva.mode "nim" -}}
{{- include "speech-fleet.component" (dict "root" . "component" "riva-nim") -}}
{{- else -}}
{{- include "speech-fleet.component" (dict "root" . "component" "asr-cpu") -}}
{{- end -}}
{{- end -}}

{{/* RIVA__TARGETS: the external list, or one target per pod of the bundled Riva (a
     StatefulSet: each pod has a stable DNS name under the headless Service), so the
     gateway's balancer counts streams per pod. One name for the whole Service would be one
     gRPC channel, which puts every stream on the first address it resolves. */}}
{{- define "speech-fleet.rivaTargets" -}}
{{- if eq .Values.riva.mode "external" -}}
{{- join "," .Values.riva.external.targets -}}
{{- else -}}
{{- $service := include "speech-fleet.rivaService" . -}}
{{- $replicas := ternary .Values.riva.nim.replicas .Values.riva.cpu.replicas (eq .Values.riva.mode "nim") -}}
{{- $targets := list -}}
{{- range $i := until (int $replicas) -}}
{{- $targets = append $targets (printf "%s-%d.%s.%s.svc.%s:50051" $service $i $service $.Release.Namespace $.Values.clusterDomain) -}}
{{- end -}}
{{- join "," $targets -}}
{{- end -}}
{{- end -}}

{{- define "speech-fleet.redisUrl" -}}
{{- if eq .Values.redis.mode "external" -}}
{{- .Values.redis.externalUrl -}}
{{- else -}}
{{- printf "redis://%s.%s.svc.%s:6379/0" (include "speech-fleet.component" (dict "root" . "component" "redis")) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}
{{- end -}}

{{- define "speech-fleet.secretName" -}}
{{- default (include "speech-fleet.component" (dict "root" . "component" "gateway")) .Values.gateway.existingSecret -}}
{{- end -}}

{{/* gunicorn's own grace (GATEWAY_GRACEFUL_TIMEOUT_S): the drain deadline plus 5 s, so
     gunicorn never kills a worker that is still draining. */}}
{{- define "speech-fleet.gunicornGraceSeconds" -}}
{{- add (int (ceil .Values.gateway.config.drainTimeoutSeconds)) 5 -}}
{{- end -}}

{{/* The pod's grace: the preStop hook (its wait, then the admin drain, which returns by
     the drain deadline + 5 s), gunicorn's grace after SIGTERM, and a margin. */}}
{{- define "speech-fleet.terminationGraceSeconds" -}}
{{- $drain := include "speech-fleet.gunicornGraceSeconds" . | int -}}
{{- add .Values.gateway.preStopSleepSeconds $drain $drain .Values.gateway.terminationGraceMarginSeconds -}}
{{- end -}}

{{/* The admin listener's bearer token: the value given, else the one already in the
     release's Secret (kept across upgrades), else a new random one. */}}
{{- define "speech-fleet.adminToken" -}}
{{- if .Values.gateway.admin.token -}}
{{- .Values.gateway.admin.token -}}
{{- else -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "speech-fleet.secretName" .) -}}
{{- $key := .Values.gateway.secretKeys.adminToken -}}
{{- if and $secret $secret.data (hasKey $secret.data $key) -}}
{{- index $secret.data $key | b64dec -}}
{{- else -}}
{{- randAlphaNum 40 -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The headless Service of the gateways' admin port (for a ServiceMonitor only; the
     front never uses it). */}}
{{- define "speech-fleet.gatewayAdmin" -}}
{{- printf "%s-admin" (include "speech-fleet.component" (dict "root" . "component" "gateway")) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The Secret holding the gateway's API keys file: the operator's, or the chart's own. */}}
{{- define "speech-fleet.apiKeysSecret" -}}
{{- default (include "speech-fleet.component" (dict "root" . "component" "gateway-api-keys")) .Values.gateway.auth.apiKeys.existingSecret -}}
{{- end -}}
