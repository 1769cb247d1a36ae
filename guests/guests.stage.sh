# shellcheck shell=bash
# Stage "guests": every guest recipe (guests/*/*.guest, and those in
# STREAMCD_GUESTS=DIR) checked, the store images they name built and put
# into out/store with hcloop make (a block shared with another image is
# stored once), and the catalogue dom0's launcher reads: store image
# "catalog". The recipe format is guests/README.md.
# Sourced by build.sh, which provides log, die, run_logged, install_missing,
# stage_build, TOP and OUT.
#
# Each recipe folder's images.sh builds the images its recipes name: for
# image NAME, image_NAME OUTFILE builds it and image_NAME_inputs prints what
# decides its bytes (dashes in NAME become underscores). It is sourced in a
# subshell per image, so folders cannot see or break each other.
stage_register guests 60 "every guest recipe (guests/*/*.guest, STREAMCD_GUESTS=DIR):
its images and the catalogue dom0's launcher reads, into
out/store (guests/README.md); upstream artifacts (NetBSD,
9front) downloaded, or taken from --from DIR, and checked"

# Keys a recipe may set; guests/README.md says what each means.
GUEST_KEYS=(title mode kernel ramdisk cmdline boot disk memory vcpus console display network ready ready_timeout symbols)
# Store names hcloop accepts (FORMAT.md); a guest's name is also its Xen
# domain name, so recipes keep to lower case.
GUEST_NAME_RE='^[a-z0-9][a-z0-9._-]{0,63}$'
IMAGE_NAME_RE='^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'

# shellcheck source=guests/artifacts.sh
. "$TOP/guests/artifacts.sh"

# guest_recipe_dirs: the folders recipes are taken from (with
# STREAMCD_GUESTS_ONLY=1, only STREAMCD_GUESTS: a store of one's own OSes).
guest_recipe_dirs() {
	local d own=("$TOP"/guests/*/)
	[[ -z ${STREAMCD_GUESTS_ONLY:-} ]] || own=()
	for d in "${own[@]}" ${STREAMCD_GUESTS:+"$STREAMCD_GUESTS"/}; do
		[[ -d $d ]] && printf '%s\n' "${d%/}"
	done
}

# guest_parse FILE: the recipe's settings in the associative array GUEST
# (disks joined by newlines in GUEST[disk]) with defaults filled in; dies
# naming FILE:LINE at the first error.
guest_parse() {
	local file=$1 name line n=0 key value k rc
	name=${file##*/}
	name=${name%.guest}
	[[ $name =~ $GUEST_NAME_RE ]] ||
		die "guests: $file: the file name must be NAME.guest with NAME of a-z, 0-9, '.', '_', '-' (at most 64)"
	GUEST=([name]="$name" [file]="$file")
	while IFS= read -r line || [[ -n $line ]]; do
		n=$((n + 1))
		[[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
		[[ $line =~ ^[[:space:]]*([a-z_]+)[[:space:]]*=[[:space:]]*(.*[^[:space:]])[[:space:]]*$ ]] ||
			die "guests: $file:$n: not a 'key = value' line: $line"
		key=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
		[[ " ${GUEST_KEYS[*]} " == *" $key "* ]] ||
			die "guests: $file:$n: unknown key '$key' (known: ${GUEST_KEYS[*]})"
		if [[ $key == disk ]]; then
			GUEST[disk]+=${GUEST[disk]:+$'\n'}$value
		else
			[[ -z ${GUEST[$key]+set} ]] || die "guests: $file:$n: '$key' given twice"
			GUEST[$key]=$value
		fi
	done <"$file"
	for k in title mode ready; do
		[[ -n ${GUEST[$k]:-} ]] || die "guests: $file: no '$k ='"
	done
	case ${GUEST[mode]} in
	pv | pvh)
		[[ -n ${GUEST[kernel]:-} ]] || die "guests: $file: mode ${GUEST[mode]} needs 'kernel = IMAGE'"
		[[ -z ${GUEST[boot]:-} ]] || die "guests: $file: 'boot' is for mode hvm; ${GUEST[mode]} boots 'kernel'"
		: "${GUEST[console]:=pv}" "${GUEST[display]:=serial}"
		[[ ${GUEST[display]} == serial ]] ||
			die "guests: $file: display = ${GUEST[display]}: a ${GUEST[mode]} guest has no screen, only its console (display = serial)"
		;;
	hvm)
		# An HVM guest boots as a PC does, SeaBIOS from its disk or CD:
		# no kernel handed over by QEMU (a real 9front kernel given that
		# way under Xen printed nothing at all; its CD boots).
		[[ -z ${GUEST[kernel]:-}${GUEST[ramdisk]:-}${GUEST[cmdline]:-} ]] ||
			die "guests: $file: mode hvm boots its disk or CD as a PC does: kernel, ramdisk and cmdline are for pv and pvh"
		: "${GUEST[boot]:=disk}" "${GUEST[console]:=serial}" "${GUEST[display]:=screen}"
		[[ ${GUEST[boot]} == disk || ${GUEST[boot]} == cdrom ]] ||
			die "guests: $file: boot = ${GUEST[boot]}: give disk or cdrom"
		[[ ${GUEST[display]} == screen || ${GUEST[display]} == serial ]] ||
			die "guests: $file: display = ${GUEST[display]}: give screen or serial"
		[[ ${GUEST[console]} != none || ${GUEST[display]} == screen ]] ||
			die "guests: $file: console = none and display = serial: the guest could not be seen at all"
		;;
	*) die "guests: $file: mode = ${GUEST[mode]}: give pv, pvh or hvm" ;;
	esac
	: "${GUEST[memory]:=256}" "${GUEST[vcpus]:=1}" "${GUEST[network]:=nat}" "${GUEST[ready_timeout]:=300}"
	guest_number memory 32 65536 ||
		die "guests: $file: memory = ${GUEST[memory]}: MiB, 32 to 65536"
	guest_number vcpus 1 64 ||
		die "guests: $file: vcpus = ${GUEST[vcpus]}: 1 to 64"
	guest_number ready_timeout 1 86400 ||
		die "guests: $file: ready_timeout = ${GUEST[ready_timeout]}: seconds, 1 to 86400"
	[[ ${GUEST[console]} == pv || ${GUEST[console]} == serial || ${GUEST[console]} == none ]] ||
		die "guests: $file: console = ${GUEST[console]}: give pv, serial or none"
	[[ ${GUEST[console]} == pv || ${GUEST[mode]} == hvm ]] ||
		die "guests: $file: console = ${GUEST[console]} needs mode hvm (a ${GUEST[mode]} guest's console is the Xen console, pv)"
	[[ ${GUEST[network]} == nat || ${GUEST[network]} == none ]] ||
		die "guests: $file: network = ${GUEST[network]}: give nat or none"
	# grep -E is what reads the pattern in dom0: status 2 is a bad pattern.
	rc=0
	grep -Eq -- "${GUEST[ready]}" <<<"" 2>/dev/null || rc=$?
	((rc < 2)) || die "guests: $file: ready = ${GUEST[ready]}: not an extended regular expression"
	[[ -n ${GUEST[disk]:-} || -n ${GUEST[kernel]:-} ]] || die "guests: $file: no 'disk =' and no kernel"
	while IFS= read -r line; do
		[[ -n $line ]] || continue
		[[ $line =~ ^([^[:space:]]+)([[:space:]]+(disk|cdrom))?$ ]] ||
			die "guests: $file: disk = $line: give IMAGE, IMAGE disk or IMAGE cdrom"
	done <<<"${GUEST[disk]:-}"
	if [[ ${GUEST[boot]:-} == cdrom && ${GUEST[disk]:-} != *cdrom* ]]; then
		die "guests: $file: boot = cdrom but no 'disk = IMAGE cdrom'"
	fi
	for k in $(guest_images); do
		[[ $k =~ $IMAGE_NAME_RE ]] || die "guests: $file: image name '$k' is not a store name"
	done
}

# guest_number KEY MIN MAX: GUEST[KEY] is a whole number from MIN to MAX.
guest_number() {
	[[ ${GUEST[$1]} =~ ^[0-9]{1,9}$ ]] || return 1
	((GUEST[$1] >= $2 && GUEST[$1] <= $3))
}

# guest_images: the store images GUEST names (kernel, ramdisk, symbols,
# disks), one a line, in that order.
guest_images() {
	local line
	[[ -z ${GUEST[kernel]:-} ]] || printf '%s\n' "${GUEST[kernel]}"
	[[ -z ${GUEST[ramdisk]:-} ]] || printf '%s\n' "${GUEST[ramdisk]}"
	[[ -z ${GUEST[symbols]:-} ]] || printf '%s\n' "${GUEST[symbols]}"
	while IFS= read -r line; do
		[[ -z $line ]] || printf '%s\n' "${line%%[[:space:]]*}"
	done <<<"${GUEST[disk]:-}"
}

# guest_image_build DIR NAME: image NAME from DIR/images.sh, built (or found
# up to date, or restored from the cache) in out/guests/images/NAME/.
# Status 3: an upstream artifact it needs is not available (the reasons
# appended to the file GUEST_MISSING); the recipes naming it are left out.
guest_image_build() (
	local dir=$1 name=$2 fn dest hash arts=() f missing=0
	fn=image_${name//[-.]/_}
	dest=$OUT/guests/images/$name
	[[ -f $dir/images.sh ]] || die "guests: $dir has recipes but no images.sh to build image $name"
	# shellcheck disable=SC1091 # each is linted on its own
	. "$dir/images.sh"
	declare -F "$fn" "${fn}_inputs" >/dev/null ||
		die "guests: $dir/images.sh defines no $fn and ${fn}_inputs for image $name"
	if declare -F "${fn}_artifacts" >/dev/null; then
		mapfile -t arts < <("${fn}_artifacts")
	fi
	hash=$({
		declare -f "$fn" "${fn}_inputs"
		"${fn}_inputs"
		artifact_pins "$dir" "${arts[@]}"
	} | sha256sum | cut -d' ' -f1)
	# Up to date, an image needs none of its artifacts: only a build fetches.
	if ((${#arts[@]})) && ! stage_uptodate "guest-$name" "$hash" "$dest" image image.sha256; then
		for f in "${arts[@]}"; do
			artifact_fetch "$dir" "$f" || {
				missing=1
				printf '%s\n' "$ARTIFACT_WHY" >>"$GUEST_MISSING"
			}
		done
		((!missing)) || exit 3
	fi
	# shellcheck disable=SC2034 # read by artifact, which image functions call
	GUEST_DIR=$dir
	stage_build "guest-$name" "$hash" "$dest" image image.sha256 -- guest_image_make "$fn" "$dir/images.sh"
)

# guest_image_make FUNCTION FROM DIR: FUNCTION's image and its SHA-256 in DIR.
guest_image_make() {
	log "guests: building an image with $1 ($2; log: $OUT/log/guests-images.log)"
	log_run guests-images "$1" "$3/image"
	[[ -s $3/image ]] || die "guests: $1 ($2) made no image"
	sha256sum <"$3/image" | cut -d' ' -f1 >"$3/image.sha256"
}

# guest_store_image NAME: out/guests/images/NAME into the store, version =
# the first 16 hex digits of its SHA-256 (a rerun finds it in place), with
# the boot profile the guest-profiles stage recorded for that version
# (without it, a rerun would drop the profile from the index); prints
# "VERSION SIZE STORED_BYTES".
guest_store_image() {
	local name=$1 img=$OUT/guests/images/$1/image version profile=() pfile=$OUT/guests/$1.profile
	version=$(cut -c1-16 "$img.sha256")
	if guest_profile_of "$name" "$version" >"$pfile"; then
		profile=(--profile "$pfile")
	fi
	run_logged "guests-store-$name" "$TOP/cloop/build/hcloop" make -q --sign "$SIGN_KEY_SEC" \
		"${profile[@]}" "$img" "$OUT/store" "$name" "$version"
	rm -f "$pfile"
	printf '%s %s %s\n' "$version" "$(stat -c %s "$img")" "$(guest_stored_bytes "$name" "$version")"
}

# guest_stored_bytes NAME VERSION: the bytes of NAME's distinct block files,
# what a client downloads for the whole image.
guest_stored_bytes() {
	"$TOP/cloop/build/hcloop" info --blocks "$OUT/store" "$1" "$2" |
		awk '$1 == "block" && $2 ~ /^[0-9]+$/ && $5 != "-" && !seen[$5]++ { n += $4 } END { printf "%d\n", n }'
}

# guest_catalog_entry IMAGE_LINE...: GUEST as a catalogue stanza; each
# IMAGE_LINE is "NAME VERSION SIZE STORED".
guest_catalog_entry() {
	local k line
	printf 'guest = %s\n' "${GUEST[name]}"
	for k in "${GUEST_KEYS[@]}"; do
		[[ $k == disk || -z ${GUEST[$k]:-} ]] || printf '%s = %s\n' "$k" "${GUEST[$k]}"
	done
	while IFS= read -r line; do
		[[ -z $line ]] || printf 'disk = %s\n' "$line"
	done <<<"${GUEST[disk]:-}"
	printf 'image = %s\n' "$@"
	printf '\n'
}

stage_guests() {
	local dir file name catalog=$OUT/guests/catalog line version n=0 start=$SECONDS rc why
	local -A GUEST=() seen=() stored=() lacking=() whys=()
	local entries=() images left=() GUEST_MISSING ARTIFACT_UNAVAILABLE=$OUT/guests/unavailable
	rm -rf "$ARTIFACT_UNAVAILABLE"
	[[ -x $TOP/cloop/build/hcloop ]] || stage_hcloop
	# Here, not in guest_store_image's subshell: a key made now is made once.
	sign_key
	mkdir -p "$OUT/guests" "$OUT/store"
	while IFS= read -r dir; do
		# Every pin checked, used or not: a bad line is a recipe error.
		artifact_line "$dir" '' || true
		for file in "$dir"/*.guest; do
			[[ -f $file ]] || continue
			guest_parse "$file"
			name=${GUEST[name]}
			[[ -z ${seen[$name]:-} ]] || die "guests: two recipes named $name: ${seen[$name]} and $file"
			seen[$name]=$file
			images=() why='' whys=()
			# The first folder whose recipes name an image builds it; a
			# later one may use it (STREAMCD_GUESTS' recipes the project's
			# kernel, say).
			for line in $(guest_images); do
				if [[ -z ${stored[$line]:-}${lacking[$line]:-} ]]; then
					GUEST_MISSING=$OUT/guests/missing.$line
					rm -f "$GUEST_MISSING"
					rc=0
					guest_image_build "$dir" "$line" || rc=$?
					if ((rc == 3)); then
						lacking[$line]=$(awk '!seen[$0]++' "$GUEST_MISSING" | paste -sd '|')
					elif ((rc)); then
						exit "$rc"
					else
						stored[$line]=$(guest_store_image "$line")
					fi
					rm -f "$GUEST_MISSING"
				fi
				# One reason once, however many of the recipe's images it stops.
				if [[ -n ${lacking[$line]:-} && -z ${whys[${lacking[$line]}]:-} ]]; then
					whys[${lacking[$line]}]=1
					why+="${why:+; }image $line: ${lacking[$line]//|/; }"
				fi
				images+=("$line ${stored[$line]:-}")
			done
			if [[ -n $why ]]; then
				left+=("$name: $why")
				log "guests: $name LEFT OUT of the catalogue: $why"
				continue
			fi
			entries+=("$(guest_catalog_entry "${images[@]}")")
			n=$((n + 1))
			log "guests: $name (${GUEST[mode]}): ${images[*]%% *}"
		done
	done < <(guest_recipe_dirs)
	((n + ${#left[@]})) || die "guests: no recipes (*.guest) in $(guest_recipe_dirs | tr '\n' ' ')"
	{
		printf '# streamcd guest catalogue: one stanza per guest, the recipe with\n'
		printf '# defaults filled in and "image = NAME VERSION SIZE STORED_BYTES" lines.\n\n'
		# Read by the boot matrix: its case for such a guest is a SKIP.
		((${#left[@]} == 0)) || printf '# left out: %s\n\n' "${left[@]}"
		((${#entries[@]} == 0)) || printf '%s\n\n' "${entries[@]}"
	} >"$catalog.new"
	mv "$catalog.new" "$catalog"
	rm -rf "$ARTIFACT_UNAVAILABLE"
	version=$(sha256sum <"$catalog" | cut -c1-16)
	run_logged guests-store-catalog "$TOP/cloop/build/hcloop" make -q --sign "$SIGN_KEY_SEC" "$catalog" "$OUT/store" catalog "$version"
	log "guests: $n guests, catalogue version $version in $OUT/store ($((SECONDS - start)) s)${left:+; ${#left[@]} left out for missing artifacts (above; the build goes on)}"
}
