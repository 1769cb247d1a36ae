# shellcheck shell=bash
# Stage "key": the Ed25519 key that signs every index the build puts into
# out/store (dom0, the guest images, the catalogue). Its public half is
# baked into the initrd, which then mounts nothing unsigned. Sourced by
# build.sh, which provides log, die, stage_hcloop and TOP.
#
# The secret key never goes into out/ or the repository: STREAMCD_SIGN_KEY
# names the user's own (FILE.sec, with FILE.pub beside it), or one is made
# once under /var/lib/streamcd/signing and kept there. A CD trusts only the
# key it was built with: whoever loses it must build and burn new CDs.
stage_register key 0 "the key that signs the store's indexes (made once in
/var/lib/streamcd/signing unless STREAMCD_SIGN_KEY=FILE.sec
names yours, FILE.pub beside it): prints where it is"

SIGN_KEY_DEFAULT_DIR=/var/lib/streamcd/signing

# sign_key: SIGN_KEY_SEC and SIGN_KEY_PUB, the key pair every build stage
# signs with and the initrd trusts; made on first use when none is given.
sign_key() {
	local base
	[[ -z ${SIGN_KEY_SEC:-} ]] || return 0
	[[ -x $TOP/cloop/build/hcloop ]] || stage_hcloop
	if [[ -n ${STREAMCD_SIGN_KEY:-} ]]; then
		base=${STREAMCD_SIGN_KEY%.sec}
		[[ -f $base.sec ]] || die "key: STREAMCD_SIGN_KEY=$STREAMCD_SIGN_KEY: no such secret key (make one with: cloop/build/hcloop keygen NAME)"
		[[ -f $base.pub ]] || die "key: $base.pub is missing: the public key must lie beside $base.sec"
	else
		base=$SIGN_KEY_DEFAULT_DIR/streamcd
		if [[ ! -f $base.sec ]]; then
			[[ ! -e $base.pub ]] || die "key: $base.pub exists without $base.sec: restore the secret key or remove both"
			mkdir -p "$SIGN_KEY_DEFAULT_DIR"
			chmod 0700 "$SIGN_KEY_DEFAULT_DIR"
			"$TOP/cloop/build/hcloop" keygen "$base" >/dev/null || die "key: hcloop keygen $base failed"
			log "key: made a new signing key $base.sec; BACK IT UP (with $base.pub):"
			log "key: the CDs built from now on accept only stores it signs"
		fi
	fi
	case $base in
	"$TOP"/* | "$OUT"/*) die "key: $base.sec lies inside the project or out/: keep secret keys elsewhere" ;;
	esac
	SIGN_KEY_SEC=$base.sec
	SIGN_KEY_PUB=$base.pub
}

stage_key() {
	sign_key
	log "key: secret $SIGN_KEY_SEC (keep it private; back it up)"
	log "key: public $SIGN_KEY_PUB (baked into the initrd)"
}
