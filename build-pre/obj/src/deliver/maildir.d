build-pre/obj/src/deliver/maildir.o: src/deliver/maildir.c \
 src/deliver/deliver.h src/store/file.h src/util/util.h
src/deliver/deliver.h:
src/store/file.h:
src/util/util.h:
