{{/* The objects' name: the release name when it says nodeagent already. */}}
{{- define "nodeagent.fullname" -}}
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

{{- define "nodeagent.selectorLabels" -}}
app.kubernetes.io/name: {{ default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "nodeagent.labels" -}}
{{ include "nodeagent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: exporter
{{- if not .Values.plainManifests }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
{{- end -}}

{{- define "nodeagent.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* The Secret with the serving certificate, or "" for none. */}}
{{- define "nodeagent.tlsSecret" -}}
{{- if .Values.web.tls.existingSecret -}}
{{ .Values.web.tls.existingSecret }}
{{- else if .Values.web.tls.certManager.enabled -}}
{{ include "nodeagent.fullname" . }}-tls
{{- end -}}
{{- end -}}

{{/* The name the serving certificate is issued for and verified against. */}}
{{- define "nodeagent.serverName" -}}
{{ include "nodeagent.fullname" . }}.{{ .Release.Namespace }}.svc
{{- end -}}

{{/* Settings that contradict each other fail the render, naming the values. */}}
{{- define "nodeagent.validate" -}}
{{- if and .Values.web.tls.existingSecret .Values.web.tls.certManager.enabled -}}
{{- fail "web.tls.existingSecret and web.tls.certManager.enabled are two sources of one certificate; set one" -}}
{{- end -}}
{{- if and .Values.web.configSecret (or .Values.web.tls.existingSecret .Values.web.tls.certManager.enabled) -}}
{{- fail "web.configSecret is a complete web config; it replaces web.tls, so set one of them" -}}
{{- end -}}
{{- if and .Values.web.tls.clientAuth (not (include "nodeagent.tlsSecret" .)) -}}
{{- fail "web.tls.clientAuth needs a CA: set web.tls.existingSecret (with ca.crt) or web.tls.certManager.enabled" -}}
{{- end -}}
{{- if not (or .Values.web.kubernetesAuth .Values.web.tls.clientAuth .Values.web.configSecret) -}}
{{- fail "web.kubernetesAuth=false leaves the host-network metrics port open to anyone on the network: require client certificates (web.tls.clientAuth) or give a web config with authentication (web.configSecret)" -}}
{{- end -}}
{{- if and .Values.kubelet.insecureSkipVerify .Values.kubelet.caConfigMap -}}
{{- fail "kubelet.caConfigMap and kubelet.insecureSkipVerify contradict each other; set one" -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled .Values.serviceMonitor.endpoints.resource.enabled (not (has "resource" .Values.collectors.enable)) -}}
{{- fail "serviceMonitor.endpoints.resource.enabled scrapes /metrics/resource, which needs collectors.enable: [resource]" -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled .Values.web.configSecret (not .Values.serviceMonitor.tlsConfig) -}}
{{- fail "with web.configSecret the chart cannot know how to verify the agent: set serviceMonitor.tlsConfig" -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled .Values.web.tls.clientAuth (not .Values.serviceMonitor.clientCertSecret) (not .Values.serviceMonitor.tlsConfig) -}}
{{- fail "web.tls.clientAuth requires client certificates: set serviceMonitor.clientCertSecret (a kubernetes.io/tls Secret in the release namespace)" -}}
{{- end -}}
{{- end -}}
