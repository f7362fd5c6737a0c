build-post/obj/src/smtp/smtp_body.o: src/smtp/smtp_body.c src/smtp/smtp.h \
 src/smtp/../addr/addr.h src/smtp/../util/util.h
src/smtp/smtp.h:
src/smtp/../addr/addr.h:
src/smtp/../util/util.h:
