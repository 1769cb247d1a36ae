# shellcheck shell=bash
# The store images of the Plan 9 recipes, for the guests stage
# (guests/guests.stage.sh; the format is guests/README.md), from 9front's
# release CD (artifacts), read as data.
#
# plan9-iso     the CD, decompressed and otherwise unmodified

PLAN9_ISO_GZ=9front-11554.amd64.iso.gz

image_plan9_iso_artifacts() { echo "$PLAN9_ISO_GZ"; }
image_plan9_iso_inputs() { :; }
image_plan9_iso() { gzip -dc "$(artifact "$PLAN9_ISO_GZ")" >"$1"; }
