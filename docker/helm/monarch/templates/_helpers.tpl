{{/* Names, labels and shared fragments of Monarch's chart. */}}

{{- define "monarch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "monarch.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "monarch.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "monarch.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "monarch.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "monarch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The labels that select the server's pods (never change them: selectors are immutable). */}}
{{- define "monarch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "monarch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The Secret holding the root password: the operator's, or the chart's own. */}}
{{- define "monarch.authSecret" -}}
{{- default (printf "%s-auth" (include "monarch.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{/* The admin port's scheme: HTTPS when tls.admin is on. */}}
{{- define "monarch.adminScheme" -}}
{{- if and .Values.tls.enabled .Values.tls.admin -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}

{{/* "true" when several nodes serve one PostgreSQL database (--pgSharedNodes); empty otherwise. */}}
{{- define "monarch.sharedNodes" -}}
{{- if and (eq .Values.storageEngine "postgres") .Values.postgres.sharedNodes -}}true{{- end -}}
{{- end -}}

{{/* The kind that runs the pods: a Deployment for shared nodes, else the StatefulSet. */}}
{{- define "monarch.workloadKind" -}}
{{- if include "monarch.sharedNodes" . -}}Deployment{{- else -}}StatefulSet{{- end -}}
{{- end -}}
