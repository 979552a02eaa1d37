"""The demo model server of the docker-compose stack and the Helm chart's example model.

Two small scikit-learn models trained at image build on exporter.tooling.synthetic data (the same world
the example reference profiles describe), a server that answers predictions and forwards each
batch to the mlmon sidecar, and a traffic generator whose inputs drift on a cycle.
"""
