# shellcheck shell=bash
# Upstream artifacts of the guest recipes: the release files of an OS that
# no package registry carries (NetBSD's kernel and sets, 9front's ISO, an
# OS a user brings), pinned by hash in the recipe folder's `artifacts` file,
# downloaded when a network reaches them or taken from a local directory
# (./build.sh guests --from DIR), and checked either way before any image is
# built from them. Their bytes never enter the repository. The format and
# the rules are guests/README.md ("Upstream artifacts").
# Sourced by guests.stage.sh; uses build.sh's log, die, OUT and CACHE.

# Where checked artifacts are kept, by hash: a fresh clone on this machine
# does not fetch 500 MB again.
artifact_store() {
	if [[ -n ${CACHE:-} ]]; then
		printf '%s\n' "$CACHE/artifacts"
	else
		printf '%s\n' "$OUT/guests/artifacts"
	fi
}

# artifact_line DIR FILE: FILE's line of DIR/artifacts as "SIZE ALGO HASH
# URL..."; dies on a malformed file (a recipe error, like a bad recipe
# line), fails when FILE is not listed (FILE '': checks the whole file).
artifact_line() {
	local dir=$1 want=$2 line n=0 file size hash urls
	[[ -f $dir/artifacts ]] || return 1
	while IFS= read -r line || [[ -n $line ]]; do
		n=$((n + 1))
		[[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
		read -r file size hash urls <<<"$line"
		[[ $file =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] ||
			die "guests: $dir/artifacts:$n: '$file' is not a file name (A-Z a-z 0-9 . _ + -)"
		[[ $size =~ ^([0-9]+|-)$ ]] ||
			die "guests: $dir/artifacts:$n: size '$size': bytes, or - where upstream publishes none"
		[[ $hash =~ ^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$ ]] ||
			die "guests: $dir/artifacts:$n: hash '$hash': give sha256:HEX (64 digits) or sha512:HEX (128)"
		[[ -n $urls ]] || die "guests: $dir/artifacts:$n: $file has no URL"
		[[ $file == "$want" ]] || continue
		printf '%s %s %s %s\n' "$size" "${hash%%:*}" "${hash#*:}" "$urls"
		return 0
	done <"$dir/artifacts"
	return 1
}

# artifact_check PATH SIZE ALGO HASH: empty output when PATH is the pinned
# file, else why not (both hashes named).
artifact_check() {
	local path=$1 size=$2 algo=$3 hash=$4 got
	got=$(stat -c %s "$path")
	if [[ $size != - && $got != "$size" ]]; then
		printf '%s bytes, the recipe pins %s\n' "$got" "$size"
		return 0
	fi
	got=$("${algo}sum" <"$path" | cut -d' ' -f1)
	[[ $got == "$hash" ]] || printf '%s %s, the recipe pins %s %s\n' "$algo" "$got" "$algo" "$hash"
}

# artifact_fetch DIR FILE: ARTIFACT_PATH is a checked copy of FILE (from
# the artifact store, --from's directory or its URLs, in that order). On
# failure returns 1 with the reasons in ARTIFACT_WHY (one line per source
# tried, each naming the URL or file, and how to get it), also written to
# stderr; never dies for a missing or wrong file: the recipe is left out,
# the build goes on.
artifact_fetch() {
	local dir=$1 file=$2 size algo hash urls url store dest tmp why pin
	ARTIFACT_PATH='' ARTIFACT_WHY=''
	pin=$(artifact_line "$dir" "$file") ||
		die "guests: $dir/images.sh asks for artifact $file, which $dir/artifacts does not list"
	read -r size algo hash urls <<<"$pin"
	# Tried already in this run (another image of the same file): the
	# same answer, without a second round of downloads.
	if [[ -n ${ARTIFACT_UNAVAILABLE:-} && -f $ARTIFACT_UNAVAILABLE/$file ]]; then
		ARTIFACT_WHY=$(<"$ARTIFACT_UNAVAILABLE/$file")
		return 1
	fi
	store=$(artifact_store)
	dest=$store/$algo-$hash/$file
	if [[ -f $dest && ($size == - || $(stat -c %s "$dest") == "$size") ]]; then
		ARTIFACT_PATH=$dest
		return 0
	fi
	# Called where set -e does not apply: each write is checked (a full or
	# read-only disk is a reason to give, not a reason to go on).
	if ! mkdir -p "${dest%/*}"; then
		artifact_why "artifact $file: cannot write the artifact store ${dest%/*}"
		return 1
	fi
	tmp=$dest.part.$$
	if [[ -n ${STREAMCD_FROM:-} ]]; then
		if [[ ! -f $STREAMCD_FROM/$file ]]; then
			artifact_why "artifact $file: not in --from $STREAMCD_FROM"
		else
			why=$(artifact_check "$STREAMCD_FROM/$file" "$size" "$algo" "$hash")
			if [[ -n $why ]]; then
				artifact_why "artifact $file: $STREAMCD_FROM/$file refused: $why"
			elif cp "$STREAMCD_FROM/$file" "$tmp" && mv "$tmp" "$dest"; then
				log "guests: artifact $file from $STREAMCD_FROM, $algo checked"
				ARTIFACT_PATH=$dest
				return 0
			else
				rm -f "$tmp"
				artifact_why "artifact $file: cannot copy $STREAMCD_FROM/$file into ${dest%/*} (disk full?)"
			fi
		fi
	fi
	for url in $urls; do
		rm -f "$tmp"
		log "guests: artifact $file: downloading $url"
		# --fail: an HTML error page is not the file; the hash would say so
		# anyway, but later and less clearly.
		if [[ -t 2 ]]; then
			# A person waits for hundreds of MB: show the progress (and
			# curl's own error on the terminal).
			why=''
			curl -fL --progress-bar --connect-timeout 20 --retry 2 -o "$tmp" "$url" || why="curl: exit $?"
		else
			why=$(curl -fsSL --connect-timeout 20 --retry 2 -o "$tmp" "$url" 2>&1) || why=${why:-curl failed}
		fi
		if [[ -n $why ]]; then
			# curl says it once per try: the last is enough.
			why=${why##*$'\n'}
			artifact_why "artifact $file: $url: ${why:-curl failed}"
			continue
		fi
		why=$(artifact_check "$tmp" "$size" "$algo" "$hash")
		if [[ -n $why ]]; then
			artifact_why "artifact $file: $url refused: $why"
			continue
		fi
		if ! mv "$tmp" "$dest"; then
			rm -f "$tmp"
			artifact_why "artifact $file: cannot keep it in ${dest%/*}"
			continue
		fi
		log "guests: artifact $file from $url, $algo checked"
		ARTIFACT_PATH=$dest
		return 0
	done
	rm -f "$tmp"
	[[ $size == - ]] && size=unpublished
	artifact_why "artifact $file is missing: fetch it from ${urls%% *} (size $size, $algo $hash) into a directory and run ./build.sh guests --from DIR"
	if [[ -n ${ARTIFACT_UNAVAILABLE:-} ]]; then
		mkdir -p "$ARTIFACT_UNAVAILABLE"
		printf '%s\n' "$ARTIFACT_WHY" >"$ARTIFACT_UNAVAILABLE/$file"
	fi
	return 1
}

artifact_why() {
	ARTIFACT_WHY+=${ARTIFACT_WHY:+$'\n'}$1
	printf 'guests: %s\n' "$1" >&2
}

# artifact FILE: the path of a checked copy of FILE, for an images.sh's
# image function (the stage fetched it before calling that).
artifact() {
	artifact_fetch "$GUEST_DIR" "$1" || die "guests: artifact $1 of $GUEST_DIR is not available"
	printf '%s\n' "$ARTIFACT_PATH"
}

# artifact_pins DIR FILE...: what the image's hash must include so that a
# changed pin rebuilds it (the pins, not the files: an image up to date
# needs no download).
artifact_pins() {
	local dir=$1 f
	shift
	for f in "$@"; do
		printf 'artifact %s %s\n' "$f" "$(artifact_line "$dir" "$f" | cut -d' ' -f1-3)"
	done
}
