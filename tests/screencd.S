# The tests' own "unmodified OS CD" (issue 21): a PC boot program that
# El Torito loads without emulation at 0x7c00. It shows a known text on the
# VGA text screen, echoes every typed key on the screen and on COM1, on F2
# draws a picture in VGA mode 13h (any key returns to text) and on F3 counts
# frames on its top line as fast as it can until a key (bench/screen.py:
# a screen that never stops changing); the PS/2 mouse's packets are
# counted on row 22 with the button held ("MOUSE 00012 LEFT"). Nothing
# but the BIOS: int 10h, int 15h C2xx, int 16h and port I/O. Built by
# tests/screen.py.
	.code16
	.section .text
	.globl _start
_start:
	cli
	ljmp	$0, $1f			# CS:IP = 0:7c00 whatever the BIOS chose
1:	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %ss
	movw	$0x7c00, %sp
	sti
	call	com1_init
	movw	$serial_hello, %si
	call	com1_puts
	call	mouse_init
text_screen:
	movw	$0x0003, %ax		# 80x25 colour text, screen cleared
	int	$0x10
	movw	$0xb800, %ax
	movw	%ax, %es
	movw	$banner, %si		# row 2, column 4
	movw	$(2 * 160 + 4 * 2), %di
	movb	$0x1f, %ah		# white on blue
	call	vga_puts
	movw	$help, %si
	movw	$(4 * 160 + 4 * 2), %di
	movb	$0x07, %ah
	call	vga_puts
	call	mouse_show
	movw	$(6 * 160 + 4 * 2), %di	# where typed keys go
	call	cursor
key:
	movb	$1, %ah			# int 16h: a key waiting?
	int	$0x16
	jnz	1f
	cmpb	$0, mouse_new
	je	2f
	call	mouse_show
2:	hlt				# until the next interrupt: timer, key, mouse
	jmp	key
1:	xorb	%ah, %ah		# take the key
	int	$0x16
	cmpb	$0x3c, %ah		# F2: the picture
	je	picture
	cmpb	$0x3d, %ah		# F3: the frame counter
	je	count
	cmpb	$0x0d, %al
	je	newline
	cmpb	$0x08, %al
	je	backspace
	cmpb	$0x20, %al
	jb	key
	movb	$0x0e, %ah		# yellow
	stosw
	call	com1_putc
	call	cursor
	jmp	key
newline:
	movw	$typed_nl, %si
	call	com1_puts
	movw	%di, %ax		# next row, column 4
	xorw	%dx, %dx
	movw	$160, %bx
	divw	%bx
	incw	%ax
	cmpw	$24, %ax
	jb	1f
	movw	$6, %ax			# full: start again under the help line
1:	mulw	%bx
	addw	$8, %ax
	movw	%ax, %di
	call	cursor
	jmp	key
backspace:
	cmpw	$(6 * 160 + 8), %di
	jbe	key
	subw	$2, %di
	movw	$0x0720, %es:(%di)
	call	cursor
	jmp	key

# The hardware cursor at DI's cell (int 10h, AH=2).
cursor:
	pushw	%ax
	pushw	%bx
	pushw	%dx
	movw	%di, %ax
	shrw	$1, %ax
	movb	$80, %bl
	divb	%bl			# AL row, AH column
	movb	%al, %dh
	movb	%ah, %dl
	xorb	%bh, %bh
	movb	$2, %ah
	int	$0x10
	popw	%dx
	popw	%bx
	popw	%ax
	ret

# Mode 13h: 320x200, 256 colours; a frame, 16 colour bars and the mark.
picture:
	movw	$picture_msg, %si
	call	com1_puts
	movw	$0x0013, %ax
	int	$0x10
	movw	$0xa000, %ax
	movw	%ax, %es
	xorw	%di, %di		# bars: 16 of 20 columns, colours 32..47
	xorw	%dx, %dx		# row
2:	xorw	%cx, %cx		# column
3:	movw	%cx, %ax
	movb	$20, %bl
	divb	%bl
	addb	$32, %al
	cmpw	$8, %dx
	jb	4f
	cmpw	$192, %dx
	jae	4f
	cmpw	$8, %cx
	jb	4f
	cmpw	$312, %cx
	jb	5f
4:	movb	$15, %al		# an 8-pixel white frame
5:	stosb
	incw	%cx
	cmpw	$320, %cx
	jb	3b
	incw	%dx
	cmpw	$200, %dx
	jb	2b
	xorb	%ah, %ah
	int	$0x16
	jmp	text_screen

# F3: "FRAME nnnnn" at the top right, counting up until a key is pressed;
# the key ends it and is not echoed. DI (where typed keys go) is kept.
count:
	pushw	%di
	xorw	%cx, %cx
1:	incw	%cx
	movw	$(0 * 160 + 62 * 2), %di
	movw	$frame_msg, %si
	movb	$0x2f, %ah		# white on green
	call	vga_puts
	movw	%cx, %ax
	movw	$(0 * 160 + 72 * 2), %di
	movb	$0x2f, %bl
	call	vga_digits
	movb	$1, %ah			# a key waiting?
	int	$0x16
	jz	1b
	xorb	%ah, %ah
	int	$0x16
	popw	%di
	jmp	key

# The BIOS's PS/2 mouse services: 3-byte packets to mouse_packet, then on.
# No mouse (the BIOS says so with CF) leaves row 22 at "MOUSE 00000".
mouse_init:
	pushw	%es
	movw	$0xc205, %ax		# initialise: 3-byte packets
	movb	$3, %bh
	int	$0x15
	jc	1f
	xorw	%ax, %ax
	movw	%ax, %es
	movw	$mouse_packet, %bx	# the handler, at ES:BX
	movw	$0xc207, %ax
	int	$0x15
	jc	1f
	movw	$0xc200, %ax		# enable
	movb	$1, %bh
	int	$0x15
1:	popw	%es
	ret

# Called far by the BIOS's IRQ 12 handler with the packet on the stack:
# status (the buttons in bits 0-2), x, y, 0, pushed in that order.
mouse_packet:
	pushw	%bp
	movw	%sp, %bp
	pushw	%ds
	pushw	%ax
	xorw	%ax, %ax
	movw	%ax, %ds
	incw	mouse_count
	movb	12(%bp), %al
	andb	$7, %al
	movb	%al, mouse_buttons
	movb	$1, mouse_new
	popw	%ax
	popw	%ds
	popw	%bp
	lret

# Row 22: "MOUSE nnnnn " and LEFT, RIGHT, MIDDLE or NONE; DI is kept.
mouse_show:
	pushw	%di
	movb	$0, mouse_new
	movw	$(22 * 160 + 4 * 2), %di
	movw	$mouse_msg, %si
	movb	$0x0b, %ah		# light cyan
	call	vga_puts
	movw	mouse_count, %ax
	movw	$(22 * 160 + 14 * 2), %di
	movb	$0x0b, %bl
	call	vga_digits
	movw	$none_msg, %si
	movb	mouse_buttons, %al
	testb	$1, %al
	jz	3f
	movw	$left_msg, %si
3:	testb	$2, %al
	jz	4f
	movw	$right_msg, %si
4:	testb	$4, %al
	jz	5f
	movw	$middle_msg, %si
5:	movw	$(22 * 160 + 16 * 2), %di
	movb	$0x0b, %ah
	call	vga_puts
	popw	%di
	ret

# vga_digits: AX as five decimal digits, the last at ES:DI, attribute BL.
vga_digits:
	movw	$5, %si
1:	xorw	%dx, %dx
	divw	ten
	addb	$'0', %dl
	movb	%dl, %es:(%di)
	movb	%bl, %es:1(%di)
	subw	$2, %di
	decw	%si
	jnz	1b
	ret

# vga_puts: the string at DS:SI to ES:DI, attribute AH.
vga_puts:
	lodsb
	testb	%al, %al
	jz	1f
	stosw
	jmp	vga_puts
1:	ret

com1_init:
	movw	$0x3f9, %dx
	xorb	%al, %al		# no interrupts
	outb	%al, %dx
	movw	$0x3fb, %dx
	movb	$0x80, %al		# DLAB
	outb	%al, %dx
	movw	$0x3f8, %dx
	movb	$1, %al			# 115200 baud
	outb	%al, %dx
	incw	%dx
	xorb	%al, %al
	outb	%al, %dx
	movw	$0x3fb, %dx
	movb	$0x03, %al		# 8N1
	outb	%al, %dx
	ret

com1_putc:
	pushw	%ax
	pushw	%dx
	movw	$0x3fd, %dx
1:	inb	%dx, %al
	testb	$0x20, %al
	jz	1b
	popw	%dx
	popw	%ax
	pushw	%dx
	movw	$0x3f8, %dx
	outb	%al, %dx
	popw	%dx
	ret

com1_puts:
	lodsb
	testb	%al, %al
	jz	1f
	call	com1_putc
	jmp	com1_puts
1:	ret

banner:		.asciz	"STREAMCD SCREEN TEST: a CD that shows this line"
help:		.asciz	"Type keys, they appear below. F2: a picture, F3: frames. Mouse: row 22."
serial_hello:	.asciz	"\r\nSTREAMCD SCREEN TEST on COM1\r\n"
typed_nl:	.asciz	"\r\n"
picture_msg:	.asciz	"\r\nSTREAMCD SCREEN TEST picture\r\n"
frame_msg:	.asciz	"FRAME "
mouse_msg:	.asciz	"MOUSE "
none_msg:	.asciz	"NONE  "
left_msg:	.asciz	"LEFT  "
right_msg:	.asciz	"RIGHT "
middle_msg:	.asciz	"MIDDLE"
ten:		.word	10
mouse_count:	.word	0
mouse_buttons:	.byte	0
mouse_new:	.byte	0
	.org	2048
