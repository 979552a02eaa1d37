{{/*
Helpers of the mlmon chart.

The sidecar templates (mlmon.sidecar, mlmon.volumes, mlmon.podLabels, mlmon.podAnnotations) work
from two contexts: this chart's own templates, and a parent chart that lists mlmon as a
dependency and includes them in its own Deployment with `include "mlmon.sidecar" .`. In the
parent, the values of this chart live under `.Values.mlmon`; "mlmon.settings" picks whichever
applies, so both contexts read the same keys.
*/}}

{{/* The mlmon values as YAML: `.Values.mlmon` from a parent chart, `.Values` in this chart. */}}
{{- define "mlmon.settings" -}}
{{- if and (hasKey .Values "mlmon") (kindIs "map" .Values.mlmon) -}}
{{- toYaml .Values.mlmon -}}
{{- else -}}
{{- toYaml .Values -}}
{{- end -}}
{{- end -}}

{{- define "mlmon.name" -}}
{{- default "mlmon" .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The object-name prefix. The chart name is spelled out ("mlmon") instead of .Chart.Name so a
parent chart computes the same names as this chart does. Takes a dict with Values and Release.
*/}}
{{- define "mlmon.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default "mlmon" .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mlmon.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object of this chart carries, plus commonLabels (e.g. release: kube-prometheus-stack). */}}
{{- define "mlmon.labels" -}}
helm.sh/chart: {{ include "mlmon.chart" . }}
{{ include "mlmon.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mlmon
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "mlmon.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mlmon.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The ConfigMap holding mlmon.yaml and the reference profiles. */}}
{{- define "mlmon.configMapName" -}}
{{- $v := include "mlmon.settings" . | fromYaml -}}
{{- if $v.existingConfigMap -}}
{{- $v.existingConfigMap -}}
{{- else -}}
{{- printf "%s-config" (include "mlmon.fullname" (dict "Values" $v "Release" .Release)) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
The mlmon.yaml the sidecar runs: `config` with the listeners set from the sidecar ports, so the
container ports, the probes and the exporter cannot disagree.
*/}}
{{- define "mlmon.configYaml" -}}
{{- $v := include "mlmon.settings" . | fromYaml -}}
{{- $listen := dict "metrics_listen" (printf "0.0.0.0:%d" (int $v.sidecar.metricsPort)) "ingest_listen" (printf "127.0.0.1:%d" (int $v.sidecar.ingestPort)) -}}
{{- $config := deepCopy $v.config -}}
{{- if not $config -}}
{{- if not $v.exampleModel.enabled -}}
{{- fail (printf "mlmon: `config` is empty and the example model is off: deploy your own config with the values of `%s`" (include "mlmon.valuesCommand" .)) -}}
{{- end -}}
{{- $example := .Files.Get "files/mlmon.yaml" -}}
{{- if not $example -}}
{{- fail "mlmon: `config` is empty and the chart's example config (files/mlmon.yaml) is not available here: set config (or mlmon.config in a parent chart) to your mlmon.yaml" -}}
{{- end -}}
{{- $config = regexReplaceAll "(?m)^(\\s*-?\\s*reference:\\s*)reference/" $example "${1}" | fromYaml -}}
{{- end -}}
{{- if $v.sidecar.adminToken.secretName -}}
{{- $_ := set $listen "admin_bearer_token_file" (include "mlmon.adminTokenFile" .) -}}
{{- end -}}
{{- $config = mergeOverwrite $config (dict "exporter" (mergeOverwrite (default (dict) $config.exporter) $listen)) -}}
{{- if $v.act.enabled -}}
{{- /* Alertmanager reaches act at its Service; act and the webhooks read the same token file. */ -}}
{{- $act := dict "url" (include "mlmon.actUrl" .) -}}
{{- if $v.act.bearerTokenSecret.name -}}
{{- $_ := set $act "bearer_token_file" (printf "%s/%s" (include "mlmon.actTokenDir" .) $v.act.bearerTokenSecret.key) -}}
{{- end -}}
{{- $alerting := default (dict) $config.alerting -}}
{{- $_ := set $alerting "act" (mergeOverwrite (default (dict) $alerting.act) $act) -}}
{{- $_ := set $config "alerting" $alerting -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/*
mlmon's own appVersion, whichever chart includes the sidecar. In a parent chart `.Chart` is the
parent's (often without an appVersion), so the subchart's metadata is read from `.Subcharts`.
*/}}
{{- define "mlmon.appVersion" -}}
{{- if eq .Chart.Name "mlmon" -}}
{{- .Chart.AppVersion -}}
{{- else if and .Subcharts (hasKey .Subcharts "mlmon") -}}
{{- .Subcharts.mlmon.Chart.AppVersion -}}
{{- else -}}
{{- fail "mlmon: cannot find the mlmon subchart to read its appVersion: set mlmon.image.tag (or image.digest)" -}}
{{- end -}}
{{- end -}}

{{/* Where the admin bearer token Secret (sidecar.adminToken) is mounted, and the file the config names. */}}
{{- define "mlmon.adminTokenDir" -}}/var/run/secrets/mlmon-admin{{- end -}}
{{- define "mlmon.adminTokenFile" -}}
{{- $v := include "mlmon.settings" . | fromYaml -}}
{{- printf "%s/%s" (include "mlmon.adminTokenDir" .) $v.sidecar.adminToken.key -}}
{{- end -}}
{{/* Where the web config Secret (sidecar.webConfig) is mounted. */}}
{{- define "mlmon.webConfigDir" -}}/etc/mlmon-web{{- end -}}
{{/* Where act's webhook bearer token Secret (act.bearerTokenSecret) is mounted. */}}
{{- define "mlmon.actTokenDir" -}}/var/run/secrets/mlmon-act-webhook{{- end -}}

{{/* The act Service's URL, what Alertmanager posts to (<url>/v1/alerts/<action>). */}}
{{- define "mlmon.actUrl" -}}
{{- $v := include "mlmon.settings" . | fromYaml -}}
{{- printf "http://%s-act.%s.svc:%d" (include "mlmon.fullname" (dict "Values" $v "Release" .Release)) .Release.Namespace (int $v.act.port) -}}
{{- end -}}

{{/*
exporter.shutdown_grace of the deployed config in seconds (10 when unset): a number of seconds or a
duration like 30s, 2m (the exporter's own parse_duration: one number, one unit of s m h d w).
*/}}
{{- define "mlmon.shutdownGraceSeconds" -}}
{{- $config := include "mlmon.configYaml" . | fromYaml -}}
{{- $grace := dig "exporter" "shutdown_grace" 10 $config -}}
{{- if kindIs "string" $grace -}}
{{- $units := dict "s" 1 "m" 60 "h" 3600 "d" 86400 "w" 604800 -}}
{{- $unit := regexFind "[smhdw]$" $grace -}}
{{- if or (not $unit) (not (regexMatch "^[0-9]+[smhdw]$" $grace)) -}}
{{- fail (printf "mlmon: exporter.shutdown_grace %q is not a duration like 10s or 1m" $grace) -}}
{{- end -}}
{{- mul (int (trimSuffix $unit $grace)) (index $units $unit) -}}
{{- else -}}
{{- int $grace -}}
{{- end -}}
{{- end -}}

{{/*
terminationGracePeriodSeconds of a pod running the sidecar (or act): the exporter drains for
exporter.shutdown_grace and its watchdog exits 2 s later, so the kubelet must wait at least that
long before SIGKILL; never below Kubernetes' default of 30 s, which the model container may need.

    spec:
      terminationGracePeriodSeconds: {{ include "mlmon.terminationGracePeriodSeconds" . }}
*/}}
{{- define "mlmon.terminationGracePeriodSeconds" -}}
{{- max 30 (add (include "mlmon.shutdownGraceSeconds" . | int) 2) -}}
{{- end -}}

{{/*
A probe of the sidecar: the values' timings, and unless the values name a handler of their own,
httpGet on the metrics port; tcpSocket when a web config is mounted (TLS with client certificates,
RequireAndVerifyClientCert, refuses the kubelet's handshake, and a TCP connect needs none).
Takes (dict "probe" <values probe> "path" "/healthz" "web" <bool>).
*/}}
{{- define "mlmon.probe" -}}
{{- $probe := deepCopy .probe -}}
{{- if not (or $probe.httpGet $probe.tcpSocket $probe.exec $probe.grpc) -}}
{{- if .web -}}
{{- $_ := set $probe "tcpSocket" (dict "port" "metrics") -}}
{{- else -}}
{{- $_ := set $probe "httpGet" (dict "path" .path "port" "metrics") -}}
{{- end -}}
{{- end -}}
{{- toYaml $probe -}}
{{- end -}}

{{- define "mlmon.image" -}}
{{- if .digest -}}
{{- printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository (default .appVersion .tag) -}}
{{- end -}}
{{- end -}}

{{/*
Labels for the pod template of a Deployment that runs the sidecar: the PodMonitor selects them.

    metadata:
      labels:
        {{- include "mlmon.podLabels" . | nindent 8 }}
*/}}
{{- define "mlmon.podLabels" -}}
mlmon.dev/scrape: "true"
{{- end -}}

{{/* A checksum of the sidecar config, as a pod annotation: a config change rolls the pods. */}}
{{- define "mlmon.podAnnotations" -}}
{{- $v := include "mlmon.settings" . | fromYaml -}}
{{- if not $v.existingConfigMap }}
{{- /* act's values that change the rendered mlmon.yaml (alerting.act) count too */}}
checksum/mlmon-config: {{ toYaml (list (pick $v "config" "references" "referencesConfigMap" "sidecar" "exampleReferences") (pick (default (dict) $v.act) "enabled" "port" "bearerTokenSecret")) | sha256sum }}
{{- end }}
{{- end -}}

{{/*
The exporter container. Add it to the containers of your model server's pod:

    containers:
      - name: model
        ...
      {{- include "mlmon.sidecar" . | nindent 6 }}
    volumes:
      {{- include "mlmon.volumes" . | nindent 6 }}

Your model server POSTs each prediction batch to http://127.0.0.1:<sidecar.ingestPort>/v1/predictions.
*/}}
{{- define "mlmon.sidecar" -}}
{{- $v := include "mlmon.settings" . | fromYaml -}}
- name: mlmon
  image: {{ include "mlmon.image" (dict "repository" $v.image.repository "tag" $v.image.tag "digest" $v.image.digest "appVersion" (include "mlmon.appVersion" .)) | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if $v.sidecar.native }}
  restartPolicy: Always
  {{- end }}
  args:
    - serve
    - --config
    - /etc/mlmon/mlmon.yaml
    {{- if $v.sidecar.webConfig.secretName }}
    - --web.config.file
    - {{ printf "%s/%s" (include "mlmon.webConfigDir" .) $v.sidecar.webConfig.key }}
    {{- end }}
  ports:
    - name: metrics
      containerPort: {{ int $v.sidecar.metricsPort }}
      protocol: TCP
  {{- with $v.sidecar.env }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  livenessProbe:
    {{- include "mlmon.probe" (dict "probe" $v.sidecar.livenessProbe "path" "/healthz" "web" (not (empty $v.sidecar.webConfig.secretName))) | nindent 4 }}
  readinessProbe:
    {{- include "mlmon.probe" (dict "probe" $v.sidecar.readinessProbe "path" "/readyz" "web" (not (empty $v.sidecar.webConfig.secretName))) | nindent 4 }}
  resources:
    {{- toYaml $v.sidecar.resources | nindent 4 }}
  securityContext:
    {{- toYaml $v.sidecar.securityContext | nindent 4 }}
  volumeMounts:
    - name: mlmon-config
      mountPath: /etc/mlmon
      readOnly: true
    {{- if $v.sidecar.adminToken.secretName }}
    - name: mlmon-admin-token
      mountPath: {{ include "mlmon.adminTokenDir" . }}
      readOnly: true
    {{- end }}
    {{- if $v.sidecar.webConfig.secretName }}
    - name: mlmon-web-config
      mountPath: {{ include "mlmon.webConfigDir" . }}
      readOnly: true
    {{- end }}
{{- end -}}

{{/*
The volume the sidecar mounts its config and reference profiles from: the chart's ConfigMap, plus
the user's profiles ConfigMap (referencesConfigMap) projected into the same folder.
*/}}
{{- define "mlmon.volumes" -}}
{{- $v := include "mlmon.settings" . | fromYaml -}}
- name: mlmon-config
{{- if $v.referencesConfigMap }}
  projected:
    sources:
      - configMap: {name: {{ include "mlmon.configMapName" . }}}
      - configMap: {name: {{ $v.referencesConfigMap }}}
{{- else }}
  configMap:
    name: {{ include "mlmon.configMapName" . }}
{{- end }}
{{- if $v.sidecar.adminToken.secretName }}
- name: mlmon-admin-token
  secret:
    secretName: {{ $v.sidecar.adminToken.secretName }}
    items: [{key: {{ $v.sidecar.adminToken.key | quote }}, path: {{ $v.sidecar.adminToken.key | quote }}}]
{{- end }}
{{- if $v.sidecar.webConfig.secretName }}
- name: mlmon-web-config
  secret:
    secretName: {{ $v.sidecar.webConfig.secretName }}
{{- end }}
{{- end -}}

{{/* Only the config volume of mlmon.volumes (mlmon act needs neither the admin token nor the web config). */}}
{{- define "mlmon.configVolume" -}}
{{- include "mlmon.volumes" . | fromYamlArray | first | list | toYaml -}}
{{- end -}}

{{/* The command that writes the values of a user's config (docs/kubernetes.md). */}}
{{- define "mlmon.valuesCommand" -}}
mlmon chart values --config <your mlmon.yaml> --out mlmon-values.yaml
{{- end -}}

{{/*
Rules or dashboards that `mlmon chart values` generated, checked against the config deployed.
Each part records the hash of the config it came from; the chart hashes `config` the same way
(sha256 of toJson) and fails when they differ, so edited config values never ship with the rules
of the old config. Takes (dict "root" $ "part" "rules"); renders nothing, fails or passes.
*/}}
{{- define "mlmon.checkGenerated" -}}
{{- $values := .root.Values -}}
{{- $generated := index $values.generated .part -}}
{{- if not $values.config -}}
{{- fail (printf "mlmon: generated.%s is set but `config` is empty: deploy the whole output of `%s`" .part (include "mlmon.valuesCommand" .root)) -}}
{{- end -}}
{{- $deployed := toJson $values.config | sha256sum -}}
{{- if ne $deployed (toString $generated.configSha256) -}}
{{- fail (printf "mlmon: generated.%s is stale: it was generated from config %s, but the config deployed hashes to %s. Regenerate the values with `%s`" .part (toString $generated.configSha256 | trunc 12) (trunc 12 $deployed) (include "mlmon.valuesCommand" .root)) -}}
{{- end -}}
{{- end -}}

{{/* Whether the chart's own example (its config, profiles, rules, dashboards) is what is deployed. */}}
{{- define "mlmon.deploysExample" -}}
{{- if and (not .Values.config) .Values.exampleModel.enabled -}}true{{- end -}}
{{- end -}}
