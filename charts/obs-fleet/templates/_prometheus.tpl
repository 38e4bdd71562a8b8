{{/* The bundled Prometheus's prometheus.yml. Rule files are relative to it (same folder). */}}
{{- define "obs-fleet.prometheusConfig" -}}
{{- $root := . }}
{{- $values := .Values -}}
global:
  scrape_interval: {{ $values.prometheus.scrapeInterval }}
  scrape_timeout: {{ $values.prometheus.scrapeTimeout }}
  evaluation_interval: {{ $values.prometheus.evaluationInterval }}
{{- if $values.alerts.enabled }}
rule_files:
  - obs-fleet.rules.yml
{{- end }}
{{- with $values.prometheus.alertmanagers }}
alerting:
  alertmanagers:
    - static_configs:
        - targets:
            {{- toYaml . | nindent 12 }}
{{- end }}
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:9090"]
        labels:
          namespace: {{ $root.Release.Namespace }}
{{- range $name, $role := $values.roles }}
{{- if $role.enabled }}
{{- $ctx := dict "root" $root "name" $name "role" $role }}
  # The {{ $name }}'s METRICS_PORT through its metrics Service. One pod answers each scrape:
  # for a role scaled beyond one pod, scrape per pod with a ServiceMonitor instead.
  - job_name: {{ include "obs-fleet.job" $ctx }}
    metrics_path: /metrics
    honor_labels: true
    static_configs:
      - targets: [{{ printf "%s.%s.svc.%s:%d" (include "obs-fleet.metricsServiceName" $ctx) $root.Release.Namespace $values.clusterDomain (int $role.metricsPort) | quote }}]
        labels:
          namespace: {{ $root.Release.Namespace }}
{{- end }}
{{- end }}
{{- end }}
