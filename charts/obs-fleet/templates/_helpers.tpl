{{/*
Names, labels and the per-role settings every template shares.
Role templates receive the context
  (dict "root" $ "name" "<role>" "role" <the role's values>)
*/}}

{{- define "obs-fleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "obs-fleet.fullname" -}}
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

{{/* The fullname shortened so "<it>-synthesizer-metrics" and Knative's revision names
     ("<it>-synthesizer-00001") stay within 63 characters. */}}
{{- define "obs-fleet.prefix" -}}
{{- include "obs-fleet.fullname" . | trunc 40 | trimSuffix "-" }}
{{- end }}

{{- define "obs-fleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "obs-fleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "obs-fleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "obs-fleet.labels" -}}
helm.sh/chart: {{ include "obs-fleet.chart" . }}
{{ include "obs-fleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: obs-fleet
{{- end }}

{{/* ---- per role ---- */}}

{{/* Name of a role's workload (Knative Service or Deployment + Service). */}}
{{- define "obs-fleet.roleName" -}}
{{- printf "%s-%s" (include "obs-fleet.prefix" .root) .name }}
{{- end }}

{{- define "obs-fleet.metricsServiceName" -}}
{{- printf "%s-%s-metrics" (include "obs-fleet.prefix" .root) .name }}
{{- end }}

{{- define "obs-fleet.roleSelectorLabels" -}}
{{ include "obs-fleet.selectorLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "obs-fleet.roleLabels" -}}
{{ include "obs-fleet.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* "true" when the watcher follows the Kubernetes API (roles.watcher.kubernetes.watch
     auto or on): it then has a ServiceAccount, its RBAC and a mounted token. */}}
{{- define "obs-fleet.watchesKubernetes" -}}
{{- $watcher := .Values.roles.watcher }}
{{- if and $watcher.enabled (ne (include "obs-fleet.kubernetesWatch" $watcher) "off") }}true{{ end }}
{{- end }}

{{/* roles.watcher.kubernetes.watch as KUBERNETES_WATCH: YAML 1.1 reads a bare `on` / `off`
     in a values file as true / false, which mean just that. Takes the watcher's values. */}}
{{- define "obs-fleet.kubernetesWatch" -}}
{{- $watch := .kubernetes.watch }}
{{- if kindIs "bool" $watch }}{{ ternary "on" "off" $watch }}{{ else }}{{ $watch }}{{ end }}
{{- end }}

{{- define "obs-fleet.watcherServiceAccount" -}}
{{- printf "%s-watcher" (include "obs-fleet.prefix" .) }}
{{- end }}

{{/* "true" when the watcher may act on pods (the planner's AUTO_REMEDIATE). */}}
{{- define "obs-fleet.remediates" -}}
{{- $planner := .Values.roles.planner }}
{{- if and $planner.enabled $planner.autoRemediate }}true{{ end }}
{{- end }}

{{/* The pod's service account: the watcher's own when it follows Kubernetes; every other
     pod runs without an API token (automountServiceAccountToken: false). */}}
{{- define "obs-fleet.serviceAccount" -}}
{{- if and (eq .name "watcher") (include "obs-fleet.watchesKubernetes" .root) }}
serviceAccountName: {{ include "obs-fleet.watcherServiceAccount" .root }}
automountServiceAccountToken: true
{{- else }}
automountServiceAccountToken: false
{{- end }}
{{- end }}

{{/* knative or deployment: the role's own mode, else the global one. */}}
{{- define "obs-fleet.roleMode" -}}
{{- default .root.Values.mode .role.mode }}
{{- end }}

{{- define "obs-fleet.image" -}}
{{- $root := .root }}
{{- printf "%s/%s:%s" $root.Values.image.repository .name (default $root.Chart.AppVersion $root.Values.image.tag) }}
{{- end }}

{{/* A role's in-cluster base URL: the Knative Service's cluster-local address or the
     ClusterIP Service's, both on port 80. */}}
{{- define "obs-fleet.roleURL" -}}
{{- printf "http://%s-%s.%s.svc.%s" (include "obs-fleet.prefix" .root) .name .root.Release.Namespace .root.Values.clusterDomain }}
{{- end }}

{{- define "obs-fleet.apiTokenSecret" -}}
{{- default (printf "%s-api-token" (include "obs-fleet.prefix" .)) .Values.apiToken.existingSecret }}
{{- end }}

{{- /* Whether the roles get an API_TOKEN: given, in an existing Secret, or generated. */}}
{{- define "obs-fleet.hasApiToken" -}}
{{- if or .Values.apiToken.value .Values.apiToken.existingSecret .Values.apiToken.generate }}true{{ end }}
{{- end }}

{{- /* The token this release's Secret holds: the value given, else the one an earlier
       install generated (kept across upgrades), else a new random one. "" with an
       existingSecret or with generate off. */}}
{{- define "obs-fleet.apiTokenValue" -}}
{{- if .Values.apiToken.value }}
{{- .Values.apiToken.value }}
{{- else if and (not .Values.apiToken.existingSecret) .Values.apiToken.generate }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "obs-fleet.apiTokenSecret" .) }}
{{- $kept := "" }}
{{- if and $existing $existing.data }}
{{- $kept = index $existing.data .Values.apiToken.key | default "" | b64dec }}
{{- end }}
{{- $kept | default (randAlphaNum 40) }}
{{- end }}
{{- end }}

{{/* "true" when the roles share a PostgreSQL (database.url or database.existingSecret),
     "" when each keeps SQLite under its STATE_DIR. */}}
{{- define "obs-fleet.hasDatabase" -}}
{{- if or .Values.database.url .Values.database.existingSecret }}true{{ end }}
{{- end }}

{{- define "obs-fleet.databaseSecret" -}}
{{- default (printf "%s-database" (include "obs-fleet.prefix" .)) .Values.database.existingSecret }}
{{- end }}

{{/* Where the server's CA certificate is mounted (database.caSecret). */}}
{{- define "obs-fleet.databaseCADir" -}}
/etc/obs-fleet/postgres-ca
{{- end }}

{{- define "obs-fleet.notifySecret" -}}
{{- default (printf "%s-synthesizer-notify" (include "obs-fleet.prefix" .)) .Values.roles.synthesizer.notify.existingSecret }}
{{- end }}

{{/* A checksum of what the release's own Secrets hold for a role, so a changed URL or
     token rolls its pods like a changed ConfigMap does ("" when none of them is inline). */}}
{{- define "obs-fleet.secretChecksum" -}}
{{- $values := .root.Values }}
{{- $inline := list $values.apiToken.value $values.database.url }}
{{- if eq .name "synthesizer" }}
{{- $inline = append $inline (join "," .role.notify.webhooks) }}
{{- end }}
{{- if compact $inline }}
{{- toJson $inline | sha256sum }}
{{- end }}
{{- end }}

{{/* The prometheus job of a role's metrics: the metrics Service's name, which is what a
     ServiceMonitor names the job and what the bundled Prometheus calls it too. */}}
{{- define "obs-fleet.job" -}}
{{- include "obs-fleet.metricsServiceName" . }}
{{- end }}

{{/* The environment of a role: the data of its ConfigMap. */}}
{{- define "obs-fleet.roleEnv" -}}
{{- $root := .root }}
{{- $values := $root.Values }}
{{- $env := dict
  "ROLE" .name
  "HOST" "0.0.0.0"
  "PORT" (toString (int64 .role.port))
  "METRICS_PORT" (toString (int64 .role.metricsPort))
  "TRACE_ID" $values.config.traceId
  "LOG_LEVEL" $values.config.logLevel
  "LOG_FORMAT" $values.config.logFormat
  "METRICS_PREFIX" $values.config.metricsPrefix
  "MAX_BODY_BYTES" (toString (int64 $values.config.maxBodyBytes))
  "SHUTDOWN_GRACE_SECONDS" (toString (int64 $values.config.shutdownGraceSeconds))
  "MONITOR_HEARTBEAT_INTERVAL" (toString (int64 $values.config.heartbeatInterval))
  "STATE_DIR" "/var/lib/obs-fleet"
}}
{{- /* Every enabled role's URL, so each role can reach the ones downstream of it. */}}
{{- range $peer, $peerValues := $values.roles }}
{{- if $peerValues.enabled }}
{{- $_ := set $env (printf "%s_URL" (upper $peer)) (include "obs-fleet.roleURL" (dict "root" $root "name" $peer)) }}
{{- end }}
{{- end }}
{{- if eq .name "synthesizer" }}
{{- $_ := set $env "NOTIFY_MIN_SEVERITY" .role.notify.minSeverity }}
{{- end }}
{{- if eq .name "planner" }}
{{- $_ := set $env "AUTO_REMEDIATE" (ternary "1" "0" (.role.autoRemediate | default false)) }}
{{- end }}
{{- if eq .name "watcher" }}
{{- $_ := set $env "DOCKER_WATCH" (ternary "on" "off" .role.docker.enabled) }}
{{- $_ := set $env "KUBERNETES_WATCH" (include "obs-fleet.kubernetesWatch" .role) }}
{{- $_ := set $env "KUBERNETES_NAMESPACES" (join "," .role.kubernetes.namespaces) }}
{{- $_ := set $env "KUBERNETES_LABEL_SELECTOR" .role.kubernetes.labelSelector }}
{{- if .role.docker.enabled }}
{{- $_ := set $env "DOCKER_HOST" "unix:///var/run/docker.sock" }}
{{- end }}
{{- if .role.probeRoles }}
{{- $targets := list }}
{{- range $peer, $peerValues := $values.roles }}
{{- if and $peerValues.enabled (ne $peer "watcher") }}
{{- $targets = append $targets (printf "%s=%s/healthz" $peer (include "obs-fleet.roleURL" (dict "root" $root "name" $peer))) }}
{{- end }}
{{- end }}
{{- if $targets }}
{{- $_ := set $env "PROBE_TARGETS" (join "," $targets) }}
{{- end }}
{{- end }}
{{- else if $values.roles.watcher.enabled }}
{{- /* Heartbeats go to the watcher. */}}
{{- $_ := set $env "MONITOR_ENDPOINT" (include "obs-fleet.roleURL" (dict "root" $root "name" "watcher")) }}
{{- end }}
{{- range $key, $value := $values.config.env }}
{{- $_ := set $env $key (toString $value) }}
{{- end }}
{{- range $key, $value := .role.env }}
{{- $_ := set $env $key (toString $value) }}
{{- end }}
{{- toYaml $env }}
{{- end }}

{{/* Fail early on settings that cannot work together. */}}
{{- define "obs-fleet.validate" -}}
{{- $root := . }}
{{- $database := include "obs-fleet.hasDatabase" . }}
{{- $enabled := 0 }}
{{- range $name, $role := .Values.roles }}
{{- if $role.enabled }}
{{- $enabled = add1 $enabled }}
{{- $mode := include "obs-fleet.roleMode" (dict "root" $root "role" $role) }}
{{- if eq $role.port $role.metricsPort }}
{{- fail (printf "roles.%s: port and metricsPort must differ (the metrics port is a second listener), both are %v" $name $role.port) }}
{{- end }}
{{- if and (gt (int $role.autoscaling.maxScale) 0) (gt (int $role.autoscaling.minScale) (int $role.autoscaling.maxScale)) }}
{{- fail (printf "roles.%s.autoscaling: minScale (%d) is above maxScale (%d)" $name (int $role.autoscaling.minScale) (int $role.autoscaling.maxScale)) }}
{{- end }}
{{- /* The schema refuses these too; kept for `--skip-schema-validation`. */}}
{{- if and (not $database) (or (ne (int $role.autoscaling.maxScale) 1) (gt (int $role.replicas) 1)) }}
{{- fail (printf "roles.%s: without a database (database.url or database.existingSecret) a role keeps SQLite on its own volume and runs as one instance: autoscaling.maxScale must be 1 and replicas at most 1" $name) }}
{{- end }}
{{- if and (eq $mode "knative") $role.persistence.enabled (ne (int $role.autoscaling.maxScale) 1) }}
{{- fail (printf "roles.%s: persistence (a ReadWriteOnce volume) needs a single instance (autoscaling.maxScale: 1); with a database set roles.%s.persistence.enabled=false to scale" $name $name) }}
{{- end }}
{{- if and (eq $mode "deployment") $role.persistence.enabled (gt (int $role.replicas) 1) }}
{{- fail (printf "roles.%s: persistence (a ReadWriteOnce volume) needs replicas: 1; with a database set roles.%s.persistence.enabled=false to scale" $name $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- if eq $enabled 0 }}
{{- fail "roles: enable at least one role" }}
{{- end }}
{{- $watcher := .Values.roles.watcher }}
{{- if and $watcher.enabled $watcher.docker.enabled (eq (include "obs-fleet.roleMode" (dict "root" $root "role" $watcher)) "knative") }}
{{- fail "roles.watcher.docker.enabled mounts the host's Docker socket, which a Knative revision cannot: set roles.watcher.mode=deployment (and roles.watcher.nodeSelector to the node with the socket)" }}
{{- end }}
{{- if and .Values.apiToken.value .Values.apiToken.existingSecret }}
{{- fail "apiToken: set value or existingSecret, not both" }}
{{- end }}
{{- $db := .Values.database }}
{{- if and $db.url $db.existingSecret }}
{{- fail "database: set url or existingSecret, not both" }}
{{- end }}
{{- if and $db.caSecret (not $database) }}
{{- fail "database.caSecret is the CA of a PostgreSQL server: set database.url or database.existingSecret too" }}
{{- end }}
{{- if and $db.caSecret $db.url (not (contains "sslrootcert=" $db.url)) }}
{{- fail (printf "database.caSecret is mounted at %s/ca.crt, but database.url does not name it: add sslrootcert=%s/ca.crt (with sslmode=verify-full)" (include "obs-fleet.databaseCADir" .) (include "obs-fleet.databaseCADir" .)) }}
{{- end }}
{{- $page := .Values.statusPage }}
{{- $synthesizer := .Values.roles.synthesizer }}
{{- range $kind, $route := dict "ingress" $page.ingress "httpRoute" $page.httpRoute }}
{{- if $route.enabled }}
{{- if not $synthesizer.enabled }}
{{- fail (printf "statusPage.%s routes to the synthesizer's status page: enable roles.synthesizer" $kind) }}
{{- end }}
{{- if eq (include "obs-fleet.roleMode" (dict "root" $root "role" $synthesizer)) "knative" }}
{{- fail (printf "statusPage.%s needs roles.synthesizer.mode=deployment: a Knative Service is exposed by Knative itself (knative.clusterLocal=false, or a DomainMapping)" $kind) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $page.ingress.enabled (not $page.ingress.host) }}
{{- fail "statusPage.ingress.host: name the host the status page is served on" }}
{{- end }}
{{- if and $page.httpRoute.enabled (not $page.httpRoute.parentRefs) }}
{{- fail "statusPage.httpRoute.parentRefs: name the Gateway (and its listener) the route attaches to" }}
{{- end }}
{{- $notify := .Values.roles.synthesizer.notify }}
{{- if and $notify.webhooks $notify.existingSecret }}
{{- fail "roles.synthesizer.notify: set webhooks or existingSecret, not both" }}
{{- end }}
{{- end }}

{{/* The role's container, the same in both modes but for ports and probes. */}}
{{- define "obs-fleet.container" -}}
{{- $root := .root }}
{{- $values := $root.Values }}
{{- $mode := include "obs-fleet.roleMode" . -}}
- name: {{ .name }}
  image: {{ include "obs-fleet.image" . }}
  imagePullPolicy: {{ $values.image.pullPolicy }}
  ports:
  {{- if eq $mode "knative" }}
    {{- /* A Knative container declares one port; METRICS_PORT stays undeclared and is
           scraped on the pod directly, outside Knative's request path. */}}
    - name: http1
      containerPort: {{ .role.port }}
  {{- else }}
    - name: http
      containerPort: {{ .role.port }}
      protocol: TCP
    - name: http-metrics
      containerPort: {{ .role.metricsPort }}
      protocol: TCP
  {{- end }}
  envFrom:
    - configMapRef:
        name: {{ include "obs-fleet.roleName" . }}
  {{- /* What may carry a secret comes from a Secret, one variable each, never the ConfigMap. */}}
  {{- $env := list }}
  {{- if include "obs-fleet.hasApiToken" $root }}
  {{- $env = append $env (dict "name" "API_TOKEN" "valueFrom" (dict "secretKeyRef" (dict "name" (include "obs-fleet.apiTokenSecret" $root) "key" $values.apiToken.key))) }}
  {{- end }}
  {{- if include "obs-fleet.hasDatabase" $root }}
  {{- $env = append $env (dict "name" "DATABASE_URL" "valueFrom" (dict "secretKeyRef" (dict "name" (include "obs-fleet.databaseSecret" $root) "key" $values.database.key))) }}
  {{- end }}
  {{- if and (eq .name "synthesizer") (or .role.notify.webhooks .role.notify.existingSecret) }}
  {{- $env = append $env (dict "name" "NOTIFY_WEBHOOKS" "valueFrom" (dict "secretKeyRef" (dict "name" (include "obs-fleet.notifySecret" $root) "key" .role.notify.key))) }}
  {{- end }}
  {{- with $env }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if eq $mode "knative" }}
  {{- /* Knative probes the serving port itself (through queue-proxy); the seeds' readiness
         is /healthz, and Knative drains a revision's pods on its own. */}}
  readinessProbe:
    httpGet:
      path: /healthz
    periodSeconds: 5
    failureThreshold: 3
  livenessProbe:
    httpGet:
      path: /healthz
    periodSeconds: 10
    failureThreshold: 3
  {{- else }}
  {{- /* /readyz turns 503 the moment SIGTERM arrives, taking the pod out of the Service
         before the drain. */}}
  readinessProbe:
    httpGet:
      path: /readyz
      port: http
    periodSeconds: 5
    failureThreshold: 3
  livenessProbe:
    httpGet:
      path: /healthz
      port: http
    periodSeconds: 10
    failureThreshold: 3
  {{- end }}
  resources:
    {{- toYaml (default $values.resources .role.resources) | nindent 4 }}
  securityContext:
    {{- toYaml $values.securityContext | nindent 4 }}
  volumeMounts:
    - name: state
      mountPath: /var/lib/obs-fleet
      readOnly: false
    {{- if and (include "obs-fleet.hasDatabase" $root) $values.database.caSecret }}
    - name: postgres-ca
      mountPath: {{ include "obs-fleet.databaseCADir" $root }}
      readOnly: true
    {{- end }}
    {{- if and (eq .name "watcher") .role.docker.enabled }}
    - name: docker-socket
      mountPath: /var/run/docker.sock
    {{- end }}
{{- end }}

{{/* The role's volumes: its state (emptyDir or PVC), the database's CA if given and,
     for a Docker-watching watcher, the host's socket. */}}
{{- define "obs-fleet.volumes" -}}
{{- $database := .root.Values.database }}
- name: state
  {{- if .role.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "obs-fleet.roleName" . }}-state
  {{- else }}
  emptyDir: {}
  {{- end }}
{{- if and (include "obs-fleet.hasDatabase" .root) $database.caSecret }}
- name: postgres-ca
  secret:
    secretName: {{ $database.caSecret }}
    items:
      - key: {{ $database.caKey }}
        path: ca.crt
{{- end }}
{{- if and (eq .name "watcher") .role.docker.enabled }}
- name: docker-socket
  hostPath:
    path: {{ .role.docker.socketPath }}
    type: Socket
{{- end }}
{{- end }}

{{/* ---- alert rules ---- */}}

{{/* The alert rule groups, as the `groups:` list of a Prometheus rule file. Used by the
     PrometheusRule and by the bundled Prometheus. */}}
{{- define "obs-fleet.ruleGroups" -}}
{{- $root := . }}
{{- $values := .Values }}
{{- $alerts := $values.alerts }}
{{- $prefix := $values.config.metricsPrefix }}
{{- $ns := .Release.Namespace }}
{{- $window := $alerts.rateWindow }}
{{- range $name, $role := $values.roles -}}
{{- if $role.enabled }}
{{- $ctx := dict "root" $root "name" $name "role" $role }}
{{- $job := include "obs-fleet.job" $ctx }}
{{- $mode := include "obs-fleet.roleMode" $ctx }}
{{- $selector := printf "job=%q,namespace=%q" $job $ns }}
{{- $traffic := printf "%s,route!~%q" $selector $alerts.excludeRoutes }}
{{- $labels := merge (dict "service" $name) $alerts.labels }}
- name: obs-fleet.{{ $name }}
  rules:
  {{- /* A Knative role allowed to scale to zero has no target while idle: no ServiceDown. */}}
  {{- if and $alerts.serviceDown.enabled (or (eq $mode "deployment") (ge (int $role.autoscaling.minScale) 1) (eq $name "watcher")) }}
    - alert: ServiceDown
      expr: up{ {{- $selector -}} } == 0 or absent(up{ {{- $selector -}} })
      for: {{ $alerts.serviceDown.for }}
      labels:
        {{- toYaml (merge (dict "severity" $alerts.serviceDown.severity) $labels) | nindent 8 }}
      annotations:
        summary: {{ printf "obs-fleet %s is down" $name | quote }}
        description: {{ printf "The %s metrics endpoint (job %s) has not answered a scrape for %s." $name $job $alerts.serviceDown.for | quote }}
  {{- end }}
  {{- if $alerts.highLatency.enabled }}
    - alert: HighLatency
      expr: histogram_quantile({{ $alerts.highLatency.quantile }}, sum by (namespace, job, le) (rate({{ $prefix }}_request_duration_seconds_bucket{ {{- $traffic -}} }[{{ $window }}]))) > {{ $alerts.highLatency.thresholdSeconds }}
      for: {{ $alerts.highLatency.for }}
      labels:
        {{- toYaml (merge (dict "severity" $alerts.highLatency.severity) $labels) | nindent 8 }}
      annotations:
        summary: {{ printf "obs-fleet %s is slow" $name | quote }}
        description: {{ printf "p%v latency of %s is {{ $value | humanizeDuration }} (threshold %vs) over %s." (mulf $alerts.highLatency.quantile 100) $name $alerts.highLatency.thresholdSeconds $window | quote }}
  {{- end }}
  {{- if $alerts.highErrorRate.enabled }}
    - alert: HighErrorRate
      expr: sum by (namespace, job) (rate({{ $prefix }}_requests_total{ {{- $traffic -}} ,code=~"5.."}[{{ $window }}])) / sum by (namespace, job) (rate({{ $prefix }}_requests_total{ {{- $traffic -}} }[{{ $window }}])) > {{ $alerts.highErrorRate.threshold }}
      for: {{ $alerts.highErrorRate.for }}
      labels:
        {{- toYaml (merge (dict "severity" $alerts.highErrorRate.severity) $labels) | nindent 8 }}
      annotations:
        summary: {{ printf "obs-fleet %s answers too many 5xx" $name | quote }}
        description: {{ printf "{{ $value | humanizePercentage }} of %s's requests failed with 5xx over %s (threshold %v)." $name $window $alerts.highErrorRate.threshold | quote }}
  {{- end }}
{{- end }}
{{- end }}
{{- $watcher := $values.roles.watcher }}
{{- $curator := $values.roles.curator }}
{{- if or (and $watcher.enabled (or $alerts.heartbeatLost.enabled $alerts.watcherIssues.enabled)) (and $curator.enabled $alerts.criticalIncident.enabled) }}
- name: obs-fleet.fleet
  rules:
  {{- if $watcher.enabled }}
  {{- $watcherSelector := printf "job=%q,namespace=%q" (include "obs-fleet.job" (dict "root" $root "name" "watcher")) $ns }}
  {{- if $alerts.heartbeatLost.enabled }}
    - alert: HeartbeatLost
      expr: monitoring_service_status{ {{- $watcherSelector -}} } == 0
      for: {{ $alerts.heartbeatLost.for }}
      labels:
        {{- toYaml (merge (dict "severity" $alerts.heartbeatLost.severity) $alerts.labels) | nindent 8 }}
      annotations:
        summary: "{{ "{{ $labels.service }}" }} stopped sending heartbeats"
        description: "The watcher marks {{ "{{ $labels.service }}" }} down: no heartbeat within its timeout, or an explicit failure ping."
  {{- end }}
  {{- if $alerts.watcherIssues.enabled }}
    - alert: WatcherCriticalIssuesOpen
      expr: sum by (namespace, kind) ({{ $alerts.watcherIssues.metric }}{ {{- $watcherSelector -}} ,severity="critical"}) > 0
      for: {{ $alerts.watcherIssues.for }}
      labels:
        {{- toYaml (merge (dict "severity" $alerts.watcherIssues.severity) $alerts.labels) | nindent 8 }}
      annotations:
        summary: "The watcher holds {{ "{{ $value }}" }} critical {{ "{{ $labels.kind }}" }} issue(s) open"
        description: {{ printf "Critical issues of kind {{ $labels.kind }} have been open for %s; see the watcher's /issues." $alerts.watcherIssues.for | quote }}
  {{- end }}
  {{- end }}
  {{- if and $curator.enabled $alerts.criticalIncident.enabled }}
  {{- $curatorSelector := printf "job=%q,namespace=%q" (include "obs-fleet.job" (dict "root" $root "name" "curator")) $ns }}
    - alert: CriticalIncidentOpen
      expr: sum by (namespace) ({{ $alerts.criticalIncident.metric }}{ {{- $curatorSelector -}} ,severity="critical"}) > 0
      for: {{ $alerts.criticalIncident.for }}
      labels:
        {{- toYaml (merge (dict "severity" $alerts.criticalIncident.severity) $alerts.labels) | nindent 8 }}
      annotations:
        summary: "{{ "{{ $value }}" }} critical incident(s) open"
        description: "The curator holds critical incidents open; see its /v1/incidents?state=open&severity=critical."
  {{- end }}
{{- end }}
{{- end }}
