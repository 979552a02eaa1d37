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
{{- $config = mergeOverwrite $config (dict "exporter" (mergeOverwrite (default (dict) $config.exporter) $listen)) -}}
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
checksum/mlmon-config: {{ toYaml (pick $v "config" "references" "referencesConfigMap" "sidecar" "exampleReferences") | sha256sum }}
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
  args: ["serve", "--config", "/etc/mlmon/mlmon.yaml"]
  ports:
    - name: metrics
      containerPort: {{ int $v.sidecar.metricsPort }}
      protocol: TCP
  {{- with $v.sidecar.env }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  livenessProbe:
    {{- toYaml $v.sidecar.livenessProbe | nindent 4 }}
  readinessProbe:
    {{- toYaml $v.sidecar.readinessProbe | nindent 4 }}
  resources:
    {{- toYaml $v.sidecar.resources | nindent 4 }}
  securityContext:
    {{- toYaml $v.sidecar.securityContext | nindent 4 }}
  volumeMounts:
    - name: mlmon-config
      mountPath: /etc/mlmon
      readOnly: true
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
